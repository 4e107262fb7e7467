"""``prepare --ci``: Song ci JSON -> data/ci.txt (tune:content), cleaned as the Tang poems are.

Every fixture ci is invented here (short lines of common characters under
real tune names); the one test on the real corpus reads it in place and is
skipped when it is absent.
"""

import json
import os

import pytest
from conftest import REPO, SHARED_CORPUS, run_module

from poetry_rnn.corpus import prepare, reading, split
from poetry_rnn.infra.errors import PoetryError

CORPUS = os.path.join(SHARED_CORPUS, "song_ci")
SHIPPED = os.path.join(REPO, "data", "ci.txt")

# Invented ci: 4 lines each, so a tune's lines are easy to read in the expected output.
SPRING = ["春山一夜雨声多，", "白水青林过小河。", "独坐高楼看落日，", "清风明月共谁歌。"]
AUTUMN = ["秋風吹落葉，", "寒雨過江城。"]  # traditional: converted to simplified
AUTUMN_SIMPLE = "秋风吹落叶，寒雨过江城。"


def ci_entry(tune, paragraphs, **extra):
    return {"author": "无名", "paragraphs": paragraphs, "rhythmic": tune, **extra}


def write_ci(folder, number, entries):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ci.song.{number}.json"
    path.write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def ci_folder(tmp_path):
    """Two files, numbered so that name order (1000 before 200) is not number order."""
    folder = tmp_path / "song_ci"
    write_ci(folder, 1000, [ci_entry("浣溪沙", ["江上晚来堪画处，", "渔人一叶归舟。"]),
                            ci_entry("失调名", ["无人知道此声，", "空对月明。"]),
                            ci_entry("鹧鸪天", SPRING)])  # a duplicate of file 200's first ci
    write_ci(folder, 200, [ci_entry("鹧鸪天", SPRING),
                           ci_entry("酹江月・念奴娇", AUTUMN, tags=["秋"]),
                           ci_entry("菩萨蛮", ["花□落尽，", "春去也。"]),
                           ci_entry("清平乐", ["新月（一作新雨）上西楼，", "“人”在小窗中。"]),
                           {"author": "无名", "rhythmic": "西江月"}])
    (folder / "poet.tang.0.json").write_text("[{", encoding="utf-8")  # another collection: not read
    return folder


def test_ci_are_written_tune_colon_content_in_file_number_order(ci_folder, tmp_path):
    out = tmp_path / "ci.txt"
    summary = prepare.prepare_ci(str(ci_folder), out)
    assert out.read_text(encoding="utf-8").splitlines() == [
        "鹧鸪天:" + "".join(SPRING),
        "酹江月・念奴娇:" + AUTUMN_SIMPLE,
        "清平乐:新月上西楼，人在小窗中。",
        "浣溪沙:江上晚来堪画处，渔人一叶归舟。",
    ]
    assert (summary.files_read, summary.poems_read, summary.kept) == (2, 8, 4)
    assert summary.drops == {"lost_tune": 1, "duplicate": 1, "non_han": 1, "malformed": 1}
    assert summary.changes["notes"] == 1 and summary.changes["marks"] == 1
    assert summary.shapes["念奴娇"] == 1  # counted under the tune its alias stands for


def test_the_report_names_ci_lost_tunes_and_the_commonest_tunes(ci_folder, tmp_path):
    text = prepare.prepare_ci(str(ci_folder), tmp_path / "ci.txt").format()
    assert "ci read: 8" in text and "ci kept: 4" in text
    assert "tune lost (失调名): 1" in text
    assert "not 五绝/七绝/五律/七律" not in text
    assert text.endswith("tunes: 4, commonest:\n  念奴娇: 1\n  浣溪沙: 1\n  清平乐: 1\n  鹧鸪天: 1")


def test_output_is_byte_identical_run_after_run_and_reads_back(ci_folder, tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    prepare.prepare_ci(str(ci_folder), first)
    prepare.prepare_ci(str(ci_folder), second)
    assert first.read_bytes() == second.read_bytes()
    ci, stats = reading.read_poems(first)
    assert stats.kept == 4 and not stats.skipped
    assert ci[1] == reading.CorpusPoem("酹江月・念奴娇", AUTUMN_SIMPLE)


def test_the_held_out_ci_are_chosen_by_the_poems_hash_rule(ci_folder, tmp_path):
    out = tmp_path / "ci.txt"
    prepare.prepare_ci(str(ci_folder), out)
    ci, _ = reading.read_poems(out)
    train, held_out = split.split_train_valid(ci, 0.5)
    assert sorted(train + held_out, key=ci.index) == ci
    assert all(split.content_hash(poem) < 5000 for poem in held_out)
    assert all(split.content_hash(poem) >= 5000 for poem in train)


def test_a_folder_without_ci_names_the_files_and_the_folder(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "poet.tang.0.json").write_text("[]", encoding="utf-8")
    with pytest.raises(PoetryError, match=r"no ci\.song\.\*\.json in .*give its 宋词 folder"):
        prepare.prepare_ci(str(tmp_path / "other"), tmp_path / "ci.txt")


def test_nothing_kept_is_an_error_and_leaves_out_alone(tmp_path):
    write_ci(tmp_path / "lost", 0, [ci_entry("失调名", SPRING)])
    out = tmp_path / "ci.txt"
    out.write_text("old\n", encoding="utf-8")
    with pytest.raises(PoetryError, match="no ci kept"):
        prepare.prepare_ci(str(tmp_path / "lost"), out)
    assert out.read_text(encoding="utf-8") == "old\n"


def test_prepare_takes_exactly_one_corpus_and_no_forms_for_ci(ci_folder, tmp_path):
    with pytest.raises(PoetryError, match="give exactly one of --source"):
        prepare.prepare(source="a", ci=str(ci_folder), out=str(tmp_path / "x.txt"))
    with pytest.raises(PoetryError, match="--forms keeps Tang poem shapes"):
        prepare.prepare(ci=str(ci_folder), out=str(tmp_path / "x.txt"), forms_only=True)
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--source", "x", "--cipai_table", "t.json"], "error: --cipai_table is read off Song ci: give --ci"),
        (["--ci", "x", "--title_table", "t.tsv"], "error: --title_table, --line_end_table, --subject_table and --double_table are counted"),
    ],
)
def test_cli_tables_must_match_their_corpus(tmp_path, args, message):
    result = run_module("prepare", *args, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == result.stderr.strip().splitlines()[0]
    assert result.stderr.startswith(message)


def test_cli_writes_the_ci(ci_folder, tmp_path):
    out = tmp_path / "ci.txt"
    result = run_module("prepare", "--ci", str(ci_folder), "--out", str(out), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ci kept: 4" in result.stdout
    assert len(out.read_text(encoding="utf-8").splitlines()) == 4


@pytest.mark.skipif(not os.path.isdir(CORPUS), reason=f"no corpus at {SHARED_CORPUS} (set $POETRY_RNN_CORPUS)")
def test_prepare_rebuilds_the_shipped_ci_byte_for_byte(tmp_path):
    out = tmp_path / "ci.txt"
    summary = prepare.prepare_ci(CORPUS, out)
    assert summary.files_read == 22 and not summary.skipped_files
    with open(SHIPPED, "rb") as shipped:
        assert out.read_bytes() == shipped.read()


def test_the_shipped_ci_are_there_and_clean():
    ci, stats = reading.read_poems(SHIPPED)
    assert len(ci) > 18_000 and not stats.skipped
    assert not any(poem.title == prepare.LOST_TUNE for poem in ci)
    assert len({poem.content for poem in ci}) == len(ci)
