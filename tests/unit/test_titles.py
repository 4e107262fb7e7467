"""Titles: how hard a title's characters pull, and the real titles an unprompted poem draws as its subject."""

import collections
import os
import random

import pytest

from poetry_rnn.corpus import reading, split, titles
from conftest import REPO, run_module
from test_prepare import entry, write_json


def poem(title, content):
    return reading.CorpusPoem(title=title, content=content)


def test_counts_are_per_poem_and_only_han_characters():
    counts, carried = titles.carry_counts([poem("咏梅梅", "梅花开。"), poem("咏月1", "花月明。"), poem("春", "秋风起。")])
    assert counts == {"咏": 2, "梅": 1, "月": 1, "春": 1}  # a character once per title; 1 is not Han
    assert carried == {"咏": 0, "梅": 1, "月": 1, "春": 0}


def test_weights_follow_how_often_poets_write_the_title_character():
    # The package's table, from the training split: a title's topic is written, its genre words are not.
    assert titles.weight("梅") > 0.8 and titles.weight("春") == 1.0
    assert titles.weight("咏") < 0.1 and titles.weight("首") < 0.1 and titles.weight("赠") < 0.1
    _, mean = titles.read_table()
    assert titles.weight("ℤ") == pytest.approx(mean / titles.FULL_RATE)  # in no title: the mean


def test_prepare_writes_the_table_from_its_training_split_only(tmp_path):
    filler = [chr(0x6C00 + i) for i in range(60)]  # distinct Han characters, so no two poems are the same
    poems = [entry("咏梅", [f"梅花{c}开尽，春风入户来。"]) for c in filler[:30]]
    poems += [entry("送友", [f"山月照{c}归，江水向东流。"]) for c in filler[30:]]
    write_json(tmp_path / "corpus", 0, poems)
    out, table = tmp_path / "poems.txt", tmp_path / "carry.tsv"
    result = run_module("prepare", "--source", str(tmp_path / "corpus"), "--out", str(out), "--title_table", str(table))
    assert result.returncode == 0, result.stderr
    prepared, _ = reading.read_poems(str(out))
    train, _ = split.split_train_valid(prepared, 0.02)
    plum = sum(p.title == "咏梅" for p in train)
    counts, mean = titles.read_table(str(table))
    assert counts["梅"] == (plum, plum) and counts["咏"] == (plum, 0) and counts["送"] == (len(train) - plum, 0)
    assert mean == pytest.approx(plum / (2 * len(train)))
    assert f"{len(train)} training poems" in result.stdout


# --- subjects: the real titles an unprompted poem draws -------------------------------------------


def test_a_subject_is_a_title_without_its_numbering_category_or_a_tune():
    assert titles.subject_title("帝京篇十首一") == "帝京篇" and titles.subject_title("宫词一百首其五十") == "宫词"
    assert titles.subject_title("杂曲歌辞杨柳枝二") == "杨柳枝" and titles.subject_title("送友人") == "送友人"
    for nothing in ("句", "句三", "偈颂", "七言", "浣溪沙", "菩萨蛮", "兵要望江南占鸟第", "秋", "山中1"):
        assert titles.subject_title(nothing) is None, nothing


def test_subjects_are_drawn_by_how_many_poems_have_them_up_to_a_series(tmp_path):
    poems = [poem("宫词", "x")] * 100 + [poem("送友人", "x")] * 2 + [poem("句", "x")] * 50
    path = tmp_path / "subjects.tsv"
    assert titles.write_subjects(path, poems) == 2
    table = titles.read_subjects(str(path))
    assert (table.titles, table.cumulative) == (("宫词", "送友人"), (titles.SERIES_MOST, titles.SERIES_MOST + 2))
    rng = random.Random(0)
    drawn = collections.Counter(titles.draw_subject(rng, str(path)) for _ in range(5000))
    assert drawn["宫词"] / 5000 == pytest.approx(titles.SERIES_MOST / (titles.SERIES_MOST + 2), abs=0.03)


SHIPPED_POEMS = os.path.join(REPO, "data", "poems.txt")


def test_the_shipped_subjects_are_the_training_split_s_titles(tmp_path):
    # data/poems.txt is shipped, so the table is rebuilt from it here, byte for byte, without the corpus
    from poetry_rnn.training import tables

    path = tmp_path / "subjects.tsv"
    tables.write_training_tables(SHIPPED_POEMS, subject_table=str(path))
    with open(titles.SUBJECTS, encoding="utf-8") as shipped:
        assert path.read_text(encoding="utf-8") == shipped.read()
    train, held_out = split.split_train_valid(reading.read_poems(SHIPPED_POEMS)[0], 0.02)
    only_held_out = {titles.subject_title(p.title) for p in held_out} - {titles.subject_title(p.title) for p in train}
    assert only_held_out - {None} and not only_held_out & set(titles.read_subjects().titles)


def test_poems_without_title_keywords_or_tune_draw_their_own_subject():
    from poetry_rnn import poet
    from poetry_rnn.model.vocab import RESERVED, Vocab
    from poetry_rnn.options import PoemOptions

    drawn = poet.poem_requests(PoemOptions(num=6, form="wujue"), seed=1)
    assert all(r.title for r in drawn) and len({r.title for r in drawn}) == 6
    assert [r.title for r in poet.poem_requests(PoemOptions(num=6, form="wujue"), seed=1)] == [r.title for r in drawn]
    assert [r.tone_start for r in drawn] == [r.tone_start for r in poet.poem_requests(
        PoemOptions(num=6, form="wujue", subject="none"), seed=1)]  # drawing a subject changes nothing else
    for given in (dict(title="春望"), dict(keywords=["江"]), dict(cipai="浣溪沙"), dict(subject="none")):
        assert {r.title for r in poet.poem_requests(PoemOptions(**given), seed=1)} <= {"春望", ""}
    few = Vocab(RESERVED + tuple("送友人宫词"))
    assert {r.title for r in poet.poem_requests(PoemOptions(num=20), seed=2, vocab=few)} <= {"送友人", "宫词", ""}
