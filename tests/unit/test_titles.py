"""How hard a title's characters pull: counted from real poems, shrunk towards the mean, read back as written."""

import pytest

from poetry_rnn.corpus import reading, split, titles
from conftest import run_module
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
