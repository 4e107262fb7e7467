"""Writing ci to a tune: the request, its slots and masks, and the validator, without a model.

A reference sampler follows the plan's contract (``test_constraints.simulate``)
with random and stubborn logits over the shipped model's vocabulary; every
ci it finishes must pass two judges that never see a mask: the validator
(``validator.check_poem``) and the tune table's own check (``cipai.check``,
what the table's follow share counts).
"""

import os

import numpy as np
import pytest
from conftest import REPO
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from test_constraints import simulate

from poetry_rnn.corpus import reading
from poetry_rnn.generation.constraints import plan
from poetry_rnn.infra.errors import OptionError, PoetryError
from poetry_rnn.model.network import ModelConfig
from poetry_rnn.model.vocab import Vocab
from poetry_rnn.options import PoemOptions
from poetry_rnn.verse import cipai, poem_request, prosody
from poetry_rnn.verse.poem_request import PoemRequest
from poetry_rnn.verse.validator import check_poem, ci_rhyme_names

VOCAB = Vocab.load(os.path.join(REPO, "checkpoints", "default", "vocab.txt"))
TUNES = list(cipai.read_table())[:20]  # the 20 commonest tunes, the target
BAG = ModelConfig(condition="keywords", prompt_bag=True)
COMMON = "春风花月山水江天人云夜秋日寒香红归时去来"


def ci_of(tune, **fields):
    return PoemRequest(cipai=tune, **fields)


def test_slots_lay_out_the_tune_with_a_rhyme_set_per_letter():
    pattern = cipai.lookup("菩萨蛮")
    request = ci_of("菩萨蛮", tones="strict")
    slots = poem_request.request_slots(request, poem_request.resolve_request(request))
    assert len(slots) == sum(pattern.lengths) + len(pattern.lengths)
    ends = [k for k, slot in enumerate(slots) if not slot.han]
    assert "".join(slots[k].fixed for k in ends) == pattern.punctuation
    assert [slots[k - 1].rhyme for k in ends] == [1, 1, 2, 2, 3, 3, 4, 4]  # AABBCCDD
    assert [slots[k - 1].tone for k in ends] == [line[-1] for line in pattern.tones]
    assert "".join(slot.tone for slot in slots if slot.han) == "".join(pattern.tones)


def test_a_rhyme_keeps_its_tone_without_tones_and_loose_tones_keep_the_even_positions():
    request = ci_of("浣溪沙")
    slots = [slot for slot in poem_request.request_slots(request, poem_request.resolve_request(request)) if slot.han]
    assert [slot.tone for slot in slots if slot.rhyme] == ["平"] * 5
    assert {slot.tone for slot in slots if not slot.rhyme} == {"中"}
    loose = ci_of("浣溪沙", tones="loose")
    slots = [slot for slot in poem_request.request_slots(loose, poem_request.resolve_request(loose)) if slot.han]
    assert "".join(slot.tone for slot in slots[:7]) == "中仄中平中仄平"  # 中仄平平仄仄平: 2nd, 4th, 6th, last


@pytest.mark.parametrize("fields, words", [
    (dict(cipai="浣溪"), "'浣溪' is not a tune the table knows \\(close: .*浣溪沙"),
    (dict(cipai="浣溪沙", form="qijue"), "leave out form"),
    (dict(cipai="浣溪沙", template="??，"), "leave out template"),
    (dict(cipai="如梦令", begin="一二三四五六七"), "longer than 如梦令's first line"),
    (dict(cipai="浣溪沙", acrostic="一二三四五六七"), "longer than 浣溪沙's lines"),
    (dict(cipai="浣溪沙", ci_rhyme="pingshui"), "ci_rhyme must be one of cilin, xinyun"),
])
def test_bad_ci_requests_name_the_problem(fields, words):
    with pytest.raises(PoetryError, match=words):
        poem_request.resolve_request(PoemRequest(**fields))


def test_options_name_the_tune_field_and_the_model_reads_the_tune_as_the_title():
    with pytest.raises(OptionError, match=r"^--cipai '西江' is not a tune"):
        PoemOptions(cipai="西江")
    with pytest.raises(OptionError, match=r"^JSON field 'cipai' 'list' names no tune: `write --cipai list` prints"):
        try:
            PoemOptions(cipai="list")
        except OptionError as error:
            raise error.spoken_as("json") from None
    options = PoemOptions(cipai="酹江月")  # another name of 念奴娇
    assert options.longest == sum(cipai.lookup("念奴娇").lengths) + 20
    p = plan([options.request("", "ping"), PoemOptions(cipai="念奴娇", title="赤壁怀古").request("", "ping")], VOCAB, BAG)
    assert VOCAB.decode(p.prompt_tokens[0]).startswith("念奴娇") and VOCAB.decode(p.prompt_tokens[1]).startswith("赤壁怀古")
    assert not p.title_weights[0].any()  # the tune's name is read, not pulled into the ci
    without = Vocab(tuple(token for token in VOCAB.tokens if token != "念"))
    assert without.decode(plan([PoemRequest(cipai="念奴娇")], without, BAG).prompt_tokens[0]) == "奴娇"


def test_the_plan_gives_each_rhyme_set_its_own_groups():
    request = ci_of("菩萨蛮")
    p = plan([request, PoemRequest(form="wujue", rhyme=True)], VOCAB, BAG)
    assert p.initial_groups.shape[1] == 4  # the batch's most sets
    steps = p.rhyme_set[0][p.rhyme_set[0] > 0]
    assert steps.tolist() == [1, 1, 2, 2, 3, 3, 4, 4]
    assert p.initial_groups[0].any(axis=1).all() and not p.initial_groups[1, 1:].any()
    # one group table: 词林正韵's 19 部 for the ci, then 中华新韵's groups for the wujue
    assert p.group_members.shape[0] == 19 + len(prosody.RHYME_GROUPS)


def test_a_fixed_rhyme_in_one_set_narrows_that_set_alone():
    # begin fixes the end of 菩萨蛮's first line, a rhyme of set A (仄): a 仄 character of one 入声 部
    rhyme = next(c for c in VOCAB.chars if prosody.is_han(c) and cipai.char_tone(c) == prosody.ZE
                 and len(cipai.rhyme_groups(c)) == 1 and min(cipai.rhyme_groups(c)) >= 14)
    begin = "春" * (cipai.lookup("菩萨蛮").lengths[0] - 1) + rhyme
    p = plan([ci_of("菩萨蛮", begin=begin, allow_repeats=True)], VOCAB, BAG)
    assert p.initial_groups[0, 0].nonzero()[0].tolist() == sorted(cipai.rhyme_groups(rhyme))
    assert p.initial_groups[0, 1:].sum(axis=1).min() > 1  # the other sets keep their choice
    with pytest.raises(PoetryError, match="begin character '花' at line 1, character 7 is 平 but 菩萨蛮 needs 仄"):
        plan([ci_of("菩萨蛮", begin=begin[:-1] + "花")], VOCAB, BAG)


@st.composite
def ci_requests(draw):
    tune = draw(st.sampled_from(TUNES))
    pattern = cipai.lookup(tune)
    chars = st.sampled_from(COMMON)
    begin = "".join(draw(st.lists(chars, max_size=pattern.lengths[0]))) if draw(st.booleans()) else ""
    acrostic = "".join(draw(st.lists(chars, max_size=len(pattern.lengths)))) if draw(st.booleans()) else ""
    if begin and acrostic:
        begin = acrostic[0] + begin[1:]
    return ci_of(tune, begin=begin, acrostic=acrostic, tones=draw(st.sampled_from(prosody.TONE_LEVELS)),
                 ci_rhyme=draw(st.sampled_from(cipai.RHYME_BOOKS)), allow_repeats=draw(st.integers(0, 3)) == 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests=st.lists(ci_requests(), min_size=1, max_size=3), seed=st.integers(0, 2**32 - 1),
       mode=st.sampled_from(("random", "fixed")))
def test_every_ci_the_masks_finish_follows_its_tune(requests, seed, mode):
    try:
        p = plan(requests, VOCAB, BAG)
    except PoetryError as error:  # only a begin or acrostic can make a ci impossible, e.g. a 平 where 仄 must stand
        note(f"rejected: {error}")
        assert any(r.begin or r.acrostic for r in requests), error
        return
    favourites = [VOCAB.id(c) for c in "春风月"]
    for b, tokens in enumerate(simulate(p, np.random.default_rng(seed), mode, prefer=favourites)):
        request = requests[b]
        content = VOCAB.decode(tokens)
        note(f"ci {b}: {content} for {request}")
        assert check_poem(content, request) == []
        if request.ci_rhyme == "cilin" and not request.begin and not request.acrostic:
            judged = cipai.check(cipai.lookup(request.cipai), content)
            assert judged.shape_ok and judged.rhymes_ok
            assert judged.tones_ok or request.tones != "strict"
        assert "?" not in ci_rhyme_names(content, request)


def real_ci(tune, count):
    """The first ``count`` ci of ``tune`` in the shipped data/ci.txt that follow its pattern (tones and all).

    Only ci whose line ends 平水韵 gives a tone: its table lacks some common characters (留 and 青 are
    there only as 畱 and 靑), which the masks therefore never put where a tone is needed.
    """
    pattern = cipai.lookup(tune)
    found = []
    for poem in reading.read_poems(os.path.join(REPO, "data", "ci.txt"))[0]:
        texts, _ = cipai.split_ci(poem.content)
        known = all(prosody.char_tones(text[-1:], "pingshui") for text in texts)
        if cipai.tune_name(poem.title) == tune and known and cipai.check(pattern, poem.content).follows:
            found.append(poem.content)
            if len(found) == count:
                break
    return found


def test_the_validator_passes_real_ci_and_names_what_a_broken_one_breaks():
    request = ci_of("浣溪沙", allow_repeats=True)
    ci = real_ci("浣溪沙", 20)
    assert len(ci) == 20
    # the table's check reads tones from characters with one tone only; the validator asks only the rhymes' tones
    assert all(check_poem(text, request) == [] for text in ci)
    text = ci[0]
    first_end = text.index("。") - 1
    off_rhyme = text[:first_end] + "月" + text[first_end + 1:]  # 月: 第十八部, 入声
    problems = check_poem(off_rhyme, request)
    assert any(q.startswith("rhyme: the line ends of rhyme set A") for q in problems)
    assert any("line 1 ends in '月', the tune rhymes 平 there" in q for q in problems)
    assert check_poem(text.replace("。", "，", 1), request)[0].startswith("shape: ")
