import math

import pytest

from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.evaluation.quality import (
    Cooccurrence,
    TrainingIndex,
    consistent_line_length,
    distinct_2,
    form_valid,
    novelty,
    related_share,
    repetition,
    summarize,
)

DENGGUAN = "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。"
JINGYE = "床前明月光，疑是地上霜。举头望明月，低头思故乡。"
ZAOFA = "朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万重山。"
SIX_LINES = "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。床前明月光，疑是地上霜。"


@pytest.mark.parametrize(
    "content, expected",
    [
        (DENGGUAN, True),
        (ZAOFA, True),
        ("白日依山尽。", True),
        ("白日依山尽，黄河入海流", True),  # the last line's punctuation is not checked here
        ("白日依山尽，黄河入海流水。", False),  # 5 then 6
        ("关关雎鸠，在河之洲。", False),  # 4
        ("白日依山尽，，", False),  # an empty line
        ("", False),
    ],
)
def test_consistent_line_length(content, expected):
    assert consistent_line_length(content) is expected


@pytest.mark.parametrize(
    "content, form, expected",
    [
        (DENGGUAN, None, True),
        (DENGGUAN, "free", True),
        (DENGGUAN, "wujue", True),
        (DENGGUAN, "qijue", False),
        (DENGGUAN, "wulv", False),
        (ZAOFA, None, True),
        (ZAOFA, "qijue", True),
        (SIX_LINES, None, True),  # three couplets: regular, but no named form
        (SIX_LINES, "wulv", False),
        ("白日依山尽。黄河入海流，", None, False),  # punctuation swapped
        ("白日依山尽，黄河入海流？", None, False),
        ("白日依山尽，黄河入海流", None, False),  # no closing 。
        ("白日依山尽，黄河入海流。欲穷千里目，", None, False),  # odd number of lines
        ("白日依山尽，黄河入海流水。", None, False),
        ("关关雎鸠，在河之洲。", None, False),
        ("", None, False),
    ],
)
def test_form_valid(content, form, expected):
    assert form_valid(content, form) is expected


def test_form_valid_needs_a_finished_poem_and_a_known_form():
    assert form_valid(DENGGUAN, ended=False) is False
    with pytest.raises(PoetryError, match="unknown form"):
        form_valid(DENGGUAN, "sonnet")


TRAINING = [DENGGUAN, JINGYE, ZAOFA]
GENERATED = [
    DENGGUAN,  # 4 lines copied, and the whole poem
    "床前明月光，江上一孤舟。",  # 1 of 2 lines copied
    "千里江陵一日还，白日依山尽。",  # 2 of 2 copied (lines from other places count)
    "春眠不觉晓，处处闻啼鸟。",  # 0 of 2
    "关关雎鸠，在河之洲。",  # 4-character lines are not counted
]


def test_novelty():
    index = TrainingIndex(TRAINING)
    assert novelty(GENERATED, index) == {"copied_lines": 7 / 10, "copied_poems": 1 / 5}
    assert novelty(["春眠不觉晓，处处闻啼鸟。"], index) == {"copied_lines": 0.0, "copied_poems": 0.0}
    empty = novelty([], index)
    assert math.isnan(empty["copied_lines"]) and math.isnan(empty["copied_poems"])


def test_repetition():
    poems = [
        "白日依山尽，白云白鹤飞。",  # 白 three times
        "一二一二，三三。",  # nothing three times
        "。。。，，，",  # punctuation does not count
        "□□□山",  # nor does the unknown-character mark
        "人人人",
    ]
    assert repetition(poems) == 2 / 5
    assert math.isnan(repetition([]))


def test_distinct_2():
    # 白日 日白 白日 | 白日 | 白日 日山: 6 bigrams, 3 distinct.
    assert distinct_2(["白日白日，白日。", "白日山"]) == 3 / 6
    # 春风 and 风雨 only: no bigram across the line break (风风).
    assert distinct_2(["春风，风雨。"]) == 1.0
    assert math.isnan(distinct_2(["白，日。"]))
    assert math.isnan(distinct_2([]))


def test_summarize():
    index = TrainingIndex(TRAINING)
    summary = summarize(GENERATED, index, extra_measures={"rhyme": lambda poems: len(poems) / 10})
    assert summary == {
        "poems": 5,
        # poems 1, 2, 4; poem 3 mixes 7 and 5 characters, poem 5 has 4.
        "consistent_length": 3 / 5,
        "form_valid": 3 / 5,
        "copied_lines": 7 / 10,
        "copied_poems": 1 / 5,
        "repetition": 0.0,
        # 6 couplets; 日 twice in poem 3's (一日, 白日); 处处 and 关关 are doubles, not repeats.
        "couplet_repetition": 1 / 6,
        # 16 + 8 + 10 + 8 + 6 = 48 bigrams; seen before are 上一 (更上一层楼) in
        # poem 2, 千里 (欲穷千里目) and the 4 of 白日依山尽 in poem 3: 42 distinct.
        "distinct_2": 42 / 48,
        "rhyme": 0.5,
    }
    with pytest.raises(PoetryError, match="already"):
        summarize(GENERATED, index, extra_measures={"repetition": len})


def cooccurrence_corpus():
    """100 poems: 江 in 20, always with 舟 (in 30); 帆 in every fifth; 鸥 once, beside 江; 风 everywhere."""
    poems = []
    for i in range(100):
        chars = "风" + ("江舟" if i < 20 else "山") + ("舟" if 20 <= i < 30 else "") + ("帆" if i % 5 == 0 else "")
        poems.append(chars + ("鸥" if i == 0 else "") + "。")
    return poems


def test_cooccurrence_prefers_well_attested_pairs_and_drops_what_is_everywhere():
    # Beside 江: 舟 20 times where 6 were expected (lift 3.3, score 20 log 3.3),
    # 帆 4 times where 4 were expected (lift 1: dropped), 鸥 once where 0.2 were
    # expected (lift 5, but a score of only log 5); 风 is in every poem (lift 1).
    table = Cooccurrence(cooccurrence_corpus(), top=1)
    assert table.related("江") == {"舟"}
    wide = Cooccurrence(cooccurrence_corpus(), top=10)
    assert wide.related("江") == {"舟", "鸥"}
    assert "风" not in wide.related("山") and "江" not in wide.related("山")
    assert wide.related("雪") == frozenset()


def test_related_share_counts_only_what_is_written_beside_the_prompt():
    table = Cooccurrence(cooccurrence_corpus(), top=10)
    # Other characters 舟, 风, 月: 舟 is related to 江.
    assert related_share("江舟风月。", "江", table) == 1 / 3
    # The prompt's own character never counts: 舟 asked for and written.
    assert related_share("江舟风月。", "舟", table) == 1 / 3  # 江 is related to 舟
    assert related_share("江舟风月。", "江舟", table) == 0.0
    assert math.isnan(related_share("江。", "江", table))  # nothing beside it
    assert math.isnan(related_share("江舟。", "雪", table))  # a prompt nothing relates to
