"""How readily a character ends a line: counted from real lines, shrunk towards the mean, pulled where the first line ends."""

import math

import numpy as np
import pytest

from poetry_rnn.corpus import line_ends, reading
from poetry_rnn.model import vocab as vocab_lib
from test_prepare import entry, prepared_table


def poem(content):
    return reading.CorpusPoem(title="", content=content)


def test_counts_are_per_line_and_only_han_characters():
    ends, uses = line_ends.end_counts([poem("白日依山尽，黄河入海流。"), poem("山a月，月山。")])
    assert ends == {"尽": 1, "流": 1, "月": 1, "山": 1}  # a is not Han: 月 ends 山a月
    assert uses["山"] == 3 and uses["月"] == 2 and "a" not in uses


def test_lift_follows_the_line_ends_and_a_prior_keeps_rare_characters_near_zero(tmp_path):
    # 来 ends every line it is in (100), 不 none (100), 时 ends 5 of its 5: as sure as 来, but rare.
    lines = ["不山水来"] * 100 + ["山水时"] * 5 + ["云"] * 3
    table = tmp_path / "ends.tsv"
    rows = line_ends.write_table(str(table), [poem("，".join(lines) + "。")])
    lifts = line_ends.read_table(str(table))
    assert rows == 5 and "云" not in lifts  # 云: 3 uses, fewer than MIN_USES
    mean = (100 + 5) / (100 + 105 + 105 + 100 + 5)  # over the table's characters
    assert lifts["来"] == pytest.approx(math.log((100 + line_ends.PRIOR_USES * mean) / (100 + line_ends.PRIOR_USES) / mean))
    assert lifts["来"] > lifts["时"] > 0 > lifts["不"]
    assert all(-line_ends.LIFT_BOUND <= lift <= line_ends.LIFT_BOUND for lift in lifts.values())
    vocab = vocab_lib.Vocab(vocab_lib.RESERVED + ("来", "不", "ℤ", "，"))
    vector = line_ends.lift_vector(tuple(vocab.tokens), str(table))
    assert vector.dtype == np.float32 and vector[vocab.id("来")] == pytest.approx(lifts["来"])
    assert vector[vocab.id("ℤ")] == 0 and vector[vocab.id("，")] == 0 and vector[vocab_lib.EOS] == 0


def test_the_package_table_pulls_line_endings_up_and_function_words_down():
    lifts = line_ends.read_table()
    assert min(lifts[c] for c in "时愁扉") > 0.3
    assert max(lifts[c] for c in "不一岂且") < -1.0


def test_prepare_writes_the_table_from_its_training_split_only(tmp_path):
    filler = [chr(0x6C00 + i) for i in range(60)]  # distinct Han characters, so no two poems are the same
    train, counts = prepared_table(tmp_path, "--line_end_table", [entry("咏梅", [f"梅花{c}开尽，春风入户来。"]) for c in filler])
    assert counts["尽"] == [str(len(train)), str(len(train))] and counts["梅"] == ["0", str(len(train))]
