"""The tune patterns: read off invented ci (corpus.cipai_table), checked (verse.cipai), and the shipped table.

The invented ci are drawn from the real rhyme book and tone table, so that
the builder meets characters as it meets them in the corpus; the shipped
table is judged on the held-out ci it never read.
"""

import collections
import json
import os
import random

import pytest
from conftest import REPO, SHARED_CORPUS

from poetry_rnn.corpus import cipai_table, reading, split
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.training import tables
from poetry_rnn.verse import cilin, cipai, prosody

SHIPPED_CI = os.path.join(REPO, "data", "ci.txt")
CATALOG = os.path.join(SHARED_CORPUS, "cilin_zhengyun", "Ci_Catalog.json")
BOOK = cilin.read_book()
# Characters with one tone class and one 部: the rhymes (第一部, 平), other line ends (仄, never 第一部), and fillers.
ONE_GROUP = sorted(c for c in BOOK if len(cilin.groups_of(c)) == 1)
RHYMES = [c for c in ONE_GROUP if cilin.groups_of(c) == {0} and cipai.char_tone(c) == prosody.PING]
OTHER_ENDS = [c for c in ONE_GROUP if cilin.groups_of(c) != {0} and cipai.char_tone(c) == prosody.ZE]
FILL = {prosody.P: [c for c in ONE_GROUP if cipai.char_tone(c) == prosody.PING],
        prosody.Z: [c for c in ONE_GROUP if cipai.char_tone(c) == prosody.ZE]}
# The invented tune: 5，5。7，5。 rhyming on lines 2 and 4. In the template, 中 alternates 平 and 仄 from ci to
# ci; 8 is 平 in 85 % of 40 ci (34, so 平), 7 in 75 % (30, so 中); line ends are drawn from RHYMES or OTHER_ENDS.
TEMPLATE = ("平8仄7仄", "中平平仄平", "仄仄平平中中仄", "平平中仄平")
EXPECTED_TONES = ("平平仄中仄", "中平平仄平", "仄仄平平中中仄", "平平中仄平")


def invented_ci(count, tune="试调", seed=0):
    """``count`` CorpusPoems of the invented tune (see TEMPLATE)."""
    rng = random.Random(seed)
    share = {"8": 0.85, "7": 0.75}
    ci = []
    for i in range(count):
        lines = []
        for k, line in enumerate(TEMPLATE):
            chars = []
            for j, symbol in enumerate(line):
                if symbol in share:
                    symbol = prosody.P if i < round(share[symbol] * count) else prosody.Z
                elif symbol == prosody.EITHER:
                    symbol = prosody.P if i % 2 else prosody.Z
                pool = (RHYMES if k % 2 else OTHER_ENDS) if j == len(line) - 1 else FILL[symbol]
                chars.append(rng.choice(pool))
            lines.append("".join(chars) + "，。"[k % 2])
        ci.append(reading.CorpusPoem(tune, "".join(lines)))
    return ci


def test_the_pattern_is_read_off_the_common_variant():
    other_shape = [reading.CorpusPoem("试调", "春风一夜来，花落满江城。")] * 5
    (pattern,) = cipai_table.build_table(invented_ci(40) + other_shape)
    assert pattern.tune == "试调" and pattern.lengths == (5, 5, 7, 5)
    assert pattern.tones == EXPECTED_TONES
    assert pattern.punctuation == "，。，。"
    assert pattern.rhymes == ".A.A" and pattern.rhyme_sets() == {"A": (1, 3)}
    assert (pattern.ci, pattern.variant_ci, pattern.variant_share) == (45, 40, round(40 / 45, 3))
    assert pattern.rhyme_share == 1.0
    assert pattern.tone_share == round(34 / 40, 3)  # the 6 ci with 仄 at the 平 position
    assert pattern.follow_share == round(34 / 45, 3)


def with_line_ends(ci, pools, seed=1):
    """``ci`` with line k's last character drawn from ``pools[k]`` (None: kept)."""
    rng = random.Random(seed)
    changed = []
    for poem in ci:
        texts, marks = cipai.split_ci(poem.content)
        texts = [text[:-1] + rng.choice(pool) if pool else text for text, pool in zip(texts, pools)]
        changed.append(reading.CorpusPoem(poem.title, "".join(t + m for t, m in zip(texts, marks))))
    return changed


def test_rhyme_sets_are_the_line_ends_that_share_a_bu():
    seventh = [c for c in ONE_GROUP if cilin.groups_of(c) == {6} and cipai.char_tone(c) == prosody.PING]
    assert cipai_table.build_table(with_line_ends(invented_ci(40), [None, None, RHYMES, None]))[0].rhymes == ".AAA"
    assert cipai_table.build_table(with_line_ends(invented_ci(40), [None, None, None, seventh]))[0].rhymes == "...."
    changing = with_line_ends(invented_ci(40), [RHYMES, RHYMES, seventh, seventh])  # 菩萨蛮's way: AABB
    assert cipai_table.build_table(changing)[0].rhymes == "AABB"


def test_tunes_with_too_few_ci_or_too_few_in_one_variant_are_left_out():
    few = invented_ci(cipai_table.MIN_CI - 1, tune="少调")
    scattered = [reading.CorpusPoem("散调", "花" * (n + 1) + "。" + "月" * (n % 3 + 1) + "。") for n in range(40)]
    assert cipai_table.build_table(few + scattered + invented_ci(30)) == [cipai_table.tune_pattern("试调",
                                                                                                    invented_ci(30))]


def test_aliases_are_the_other_names_a_tune_is_written_under():
    ci = invented_ci(30) + [reading.CorpusPoem("别名・试调", p.content) for p in invented_ci(3, seed=2)]
    ci += [reading.CorpusPoem("试调・别调", p.content) for p in invented_ci(2, seed=3)]  # a tune is no alias
    ci += [reading.CorpusPoem("□□・试调", invented_ci(1)[0].content)]  # nor a name nobody could read
    (pattern,) = cipai_table.build_table(ci)
    assert pattern.aliases == ("别名",) and pattern.ci == 34


def test_check_compares_shape_rhymes_and_each_tone():
    pattern = cipai.CiPattern("试调", tones=EXPECTED_TONES, punctuation="，。，。", rhymes=".A.A")
    good = invented_ci(1, seed=5)[0].content
    assert cipai.check(pattern, good).follows
    assert not cipai.check(pattern, "春风一夜来，花落满江城。").shape_ok
    off_rhyme = good[:-2] + OTHER_ENDS[0] + "。"
    assert not cipai.check(pattern, off_rhyme).rhymes_ok
    wrong_tone = FILL[prosody.Z][0] + good[1:]  # line 1's first position is 平
    result = cipai.check(pattern, wrong_tone)
    assert (result.rhymes_ok, result.tones_off, result.tones_ok) == (True, 1, False)
    either = "看" + good[1:]  # 看 is 平 and 仄: it says no tone, so it is not held against the ci
    assert cipai.char_tone("看") is None and cipai.check(pattern, either).follows
    assert cipai.check(pattern, either).tones_checked == cipai.check(pattern, good).tones_checked - 1


def test_split_ci_keeps_a_last_line_without_a_mark():
    assert cipai.split_ci("春风一夜来，花落满江城") == (("春风一夜来", "花落满江城"), ("，", ""))
    assert cipai.tune_name("酹江月・念奴娇") == "念奴娇" and cipai.tune_name("念奴娇") == "念奴娇"


def test_the_table_is_written_and_read_back_and_looked_up_by_alias(tmp_path):
    path = str(tmp_path / "cipai.json")
    ci = invented_ci(30) + [reading.CorpusPoem("别名・试调", p.content) for p in invented_ci(2, seed=2)]
    assert cipai_table.write_table(path, ci) == 1
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    assert (data["min_ci"], data["rhyme_share"], data["tone_agreement"]) == (30, 0.5, 0.8)
    table = cipai.read_table(path)
    assert table == {"试调": cipai_table.build_table(ci)[0]}
    assert cipai.lookup("别名", path) is table["试调"] and cipai.lookup("别名・试调", path) is table["试调"]
    with pytest.raises(PoetryError, match="'无调' is not a tune the table knows .*'list' shows all 1"):
        cipai.lookup("无调", path)


# --- the shipped table -------------------------------------------------------------------


def shipped_split():
    ci, _ = reading.read_poems(SHIPPED_CI)
    return split.split_train_valid(ci, tables.default_valid_fraction())


def test_the_shipped_table_is_rebuilt_from_the_training_ci_byte_for_byte(tmp_path):
    out = tmp_path / "cipai.json"
    tables.write_cipai_table(SHIPPED_CI, str(out))
    with open(cipai.TABLE, "rb") as shipped:
        assert out.read_bytes() == shipped.read()


def test_the_shipped_table_knows_the_common_tunes():
    table = cipai.read_table()
    assert len(table) >= 80
    huanxisha = cipai.lookup("浣溪沙")
    assert huanxisha.lengths == (7,) * 6 and huanxisha.rhymes == "AAA.AA"
    assert huanxisha.tones[1] == "中平中仄仄平平"
    assert cipai.lookup("菩萨蛮").rhymes == "AABBCCDD"  # a rhyme that changes every two lines
    assert cipai.lookup("酹江月") is table["念奴娇"]


def held_out_figures(patterns, held_out):
    """Per tune: held-out ci, of the common variant, following the rhymes, the tones, both; tone positions."""
    by_tune = collections.defaultdict(list)
    for poem in held_out:
        by_tune[cipai.tune_name(poem.title)].append(poem)
    figures = {}
    for pattern in patterns:
        checks = [cipai.check(pattern, poem.content) for poem in by_tune[pattern.tune]]
        variant = [c for c in checks if c.shape_ok]
        figures[pattern.tune] = collections.Counter(
            ci=len(checks), variant=len(variant), rhymes=sum(c.rhymes_ok for c in variant),
            tones=sum(c.tones_ok for c in variant), both=sum(c.follows for c in variant),
            positions=sum(c.tones_checked for c in variant), off=sum(c.tones_off for c in variant))
    return figures


def test_the_table_holds_on_the_held_out_ci_of_the_20_commonest_tunes(capsys):
    _, held_out = shipped_split()
    figures = held_out_figures(list(cipai.read_table().values())[:20], held_out)
    total = sum(figures.values(), collections.Counter())
    with capsys.disabled():
        print("\ntune        held out  variant  rhymes  tones  both  tone positions")
        for tune, f in [*figures.items(), ("all 20", total)]:
            print(f"{tune:<10}{f['ci']:>8}{f['variant']:>9}{f['rhymes']:>8}{f['tones']:>7}{f['both']:>6}"
                  f"{1 - f['off'] / max(f['positions'], 1):>15.3f}")
    assert total["ci"] >= 100
    assert total["variant"] >= 0.7 * total["ci"]
    assert total["rhymes"] >= 0.75 * total["variant"]
    assert total["tones"] >= 0.5 * total["variant"]  # every 平/仄 position of a long tune: 5 of 8 ci
    assert total["off"] <= 0.04 * total["positions"]  # position by position, 96 % or better
    assert all(f["off"] <= 0.1 * f["positions"] for f in figures.values())


@pytest.mark.skipif(not os.path.isfile(CATALOG), reason=f"no corpus at {SHARED_CORPUS} (set $POETRY_RNN_CORPUS)")
def test_the_rhyme_tones_agree_with_the_catalogue_of_tunes():
    with open(CATALOG, encoding="utf-8") as handle:
        catalogue = json.load(handle)
    kinds = collections.defaultdict(set)
    for kind, entries in catalogue.items():
        for entry in entries:
            kinds[entry["name"].strip()].add(kind)
    agree = judged = 0
    for pattern in cipai.read_table().values():
        kind = set().union(*(kinds[name] for name in (pattern.tune, *pattern.aliases)))
        if len(kind) != 1:
            continue
        ends = {pattern.tones[i][-1] for i, letter in enumerate(pattern.rhymes) if letter != cipai.NO_RHYME}
        expected = {"平韵格": ends == {prosody.P}, "仄韵格": ends == {prosody.Z}}
        judged += 1
        agree += expected.get(kind.pop(), {prosody.P, prosody.Z} <= ends)
    assert judged >= 70 and agree >= 0.9 * judged
