"""Requests (poem_request) -> per-step masks (constraints), and the validator (validator)."""

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from poetry_rnn.verse import forms, prosody, tone_patterns
from poetry_rnn.corpus import titles
from poetry_rnn.model import vocab as vocab_lib
from poetry_rnn.generation import vocab_prosody
from poetry_rnn.generation.constraints import DecodePlan, plan, tone_starts_that_fit
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model.network import CONDITIONS, ModelConfig
from poetry_rnn.verse.poem_request import MAX_USES, PoemRequest
from poetry_rnn.verse.validator import check_poem, rhyme_group_name
from poetry_rnn.model.vocab import BOS, EOS, PAD, RESERVED, SEP, UNK, Vocab

# ~270 common characters of Tang verse, every rhyme group represented.
COMMON = "".join(dict.fromkeys(
    "春花秋月何时了往事知多少小楼昨夜又东风故国不堪回首明中床前光疑是地上霜举头望低思乡"
    "白日依山尽黄河入海流欲穷千里目更一层楼红豆生南来发几枝愿君采撷此物最相破城草木深"
    "感恨别鸟惊心烽火连三家书抵万金独在异为客每逢佳节倍亲遥兄弟登高处遍插茱萸少人"
    "天年烟云门群魂长江松情衣期溪西鱼儿诗丝词无湖孤图歌波过街鞋些开台怀哀归飞微辉桃潮消愁舟"
    "山水雨雪霞沙华清空远近寒暖青绿黄紫夕阳朝暮晚晓星辰露林泉石径路桥村酒杯琴剑马车船帆"
    "园离泪裳香梦醒醉眠舞笑声落叶鸿雁燕莺蝉蝶柳梅竹菊兰荷莲柏川峰岭谷浪雾霭雷电闪晴阴"
    "夏冬岁刻郭宫殿亭阁寺庙钟鼓瑟笛箫画墨纸笔砚刀弓箭旗兵将军王侯"
))
OTHER = ("，", "。", "？", "！", "a", " ", "□")  # punctuation and non-Han tokens
VOCAB = Vocab(RESERVED + tuple(COMMON) + OTHER)
HAN = np.zeros(len(VOCAB), bool)
HAN[[VOCAB.id(c) for c in COMMON]] = True
VP = vocab_prosody.VocabProsody.build(VOCAB)


def one_hot(token):
    row = np.zeros(len(VOCAB), bool)
    row[token if isinstance(token, int) else VOCAB.id(token)] = True
    return row


def prompt_ids(vocab, condition, request):
    """The prompt a plan must fix before the content: each field's characters, then SEP."""
    return [i for text, _ in vocab_lib.prompt_fields(condition, request.title, request.keywords)
            for i in vocab.encode(text) + [SEP]]


def rows_of(p, b=0):
    return p.mask_table[p.step_masks[b, : p.lengths[b]]]


def test_vocab_prosody_matches_test_vocabulary():
    assert (VP.han == HAN).all()


@pytest.mark.parametrize("scheme", ["xinyun", "pingshui"])
def test_vocab_prosody_is_kept_on_disk_and_read_back_whole(scheme, tmp_path, monkeypatch):
    """A fresh process reads the arrays instead of 3 s of pypinyin; a damaged file is rebuilt, never trusted."""
    from poetry_rnn.infra import files

    monkeypatch.setattr(files, "CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(vocab_prosody, "_CACHE", {})
    built = vocab_prosody.VocabProsody.build(VOCAB, scheme)
    [kept] = (tmp_path / "prosody").iterdir()

    def unexpected(*_):
        raise AssertionError("rebuilt although the disk holds the arrays")

    monkeypatch.setattr(vocab_prosody, "_CACHE", {})
    monkeypatch.setattr(prosody, "_READINGS", {})
    monkeypatch.setattr(vocab_prosody.VocabProsody, "_compute", classmethod(unexpected))
    read = vocab_prosody.VocabProsody.build(VOCAB, scheme)
    assert read.unknown == built.unknown and read.scheme is built.scheme
    assert {c: prosody.char_readings(c) for c in COMMON} == {c: prosody._pypinyin_readings(c) for c in COMMON}
    for name, array in built.arrays().items():
        np.testing.assert_array_equal(read.arrays()[name], array, err_msg=name)
        assert read.arrays()[name].dtype == array.dtype
        assert name == "unknown" or not getattr(read, name).flags.writeable
    other = Vocab(RESERVED + tuple(COMMON[:-1]) + OTHER)  # another vocabulary is another file
    monkeypatch.undo()
    monkeypatch.setattr(files, "CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(vocab_prosody, "_CACHE", {})
    vocab_prosody.VocabProsody.build(other, scheme)
    assert len(list((tmp_path / "prosody").iterdir())) == 2
    kept.write_bytes(kept.read_bytes()[:100])
    monkeypatch.setattr(vocab_prosody, "_CACHE", {})
    rebuilt = vocab_prosody.VocabProsody.build(VOCAB, scheme)
    np.testing.assert_array_equal(rebuilt.group_members, built.group_members)
    assert vocab_prosody._read(str(kept), built.scheme) is not None  # and written whole again


# --------------------------------------------------------------------------
# Shapes


@pytest.mark.parametrize("name", list(forms.FORMS))
def test_form_shape_and_punctuation(name):
    form = forms.FORMS[name]
    p = plan([PoemRequest(form=name)], VOCAB)
    n = form.lines * (form.chars_per_line + 1) + 1
    assert isinstance(p, DecodePlan)
    assert p.lengths.tolist() == [n] and p.step_masks.shape == (1, n)
    assert p.step_masks.dtype == np.int32 and p.lengths.dtype == np.int32 and p.content_start.dtype == np.int32
    assert p.content_start.tolist() == [0]
    assert p.mask_table.dtype == bool and p.mask_table.shape[1] == len(VOCAB)
    assert p.group_members.shape == (len(prosody.RHYME_GROUPS), len(VOCAB))
    assert p.initial_groups.shape == (1, 1, len(prosody.RHYME_GROUPS)) and not p.initial_groups.any()
    assert not p.rhyme_set.any()
    rows = rows_of(p)
    for t in range(n - 1):
        line, pos = divmod(t, form.chars_per_line + 1)
        if pos == form.chars_per_line:
            assert (rows[t] == one_hot(form.line_end(line))).all(), t
        else:
            assert (rows[t] == HAN).all(), t  # no reserved, punctuation or non-Han token
    assert (rows[-1] == one_hot(EOS)).all()


def test_batch_pads_with_eos_row_and_dedupes_rows():
    p = plan([PoemRequest(form="wujue"), PoemRequest(form="qilv", tones="strict"), PoemRequest(max_len=3)], VOCAB)
    assert p.lengths.tolist() == [25, 65, 4]
    assert p.step_masks.shape == (3, 65)
    assert (p.mask_table[0] == one_hot(EOS)).all()
    assert (p.step_masks[0, 25:] == 0).all() and (p.step_masks[2, 4:] == 0).all()
    assert len({row.tobytes() for row in p.mask_table}) == len(p.mask_table)
    assert p.mask_table.any(axis=1).all()


def test_free_mode_begin_and_eos():
    p = plan([PoemRequest(begin="春风", max_len=10), PoemRequest(max_len=4)], VOCAB)
    assert p.lengths.tolist() == [11, 5]
    rows = rows_of(p, 0)
    assert (rows[0] == one_hot("春")).all() and (rows[1] == one_hot("风")).all()
    for t in range(2, 10):
        assert not rows[t][[PAD, UNK, BOS, SEP]].any()
        assert rows[t][EOS] and rows[t][VOCAB.id("，")] and rows[t][VOCAB.id("a")] and rows[t][HAN].all()
    assert (rows[10] == one_hot(EOS)).all()
    rows = rows_of(p, 1)
    assert not rows[0][EOS] and rows[1][EOS]  # no empty poem
    assert (rows[4] == one_hot(EOS)).all()


def test_free_mode_without_eos_runs_to_max_len():
    request = PoemRequest(begin="春 ", max_len=6, stop_at_eos=False)
    p = plan([request], VOCAB)
    rows = rows_of(p)
    assert p.lengths.tolist() == [7]
    assert not rows[:6, EOS].any() and (rows[6] == one_hot(EOS)).all()
    assert rows[3][VOCAB.id(" ")]
    assert check_poem("春 花落，月", request) == []
    assert check_poem("春 花", request)[0].startswith("free: ended")


def test_rhyme_group_name():
    assert rhyme_group_name("床前明月光，疑是地上霜。举头望明月，低头思故乡。") == "十唐"
    assert rhyme_group_name("春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。") is None
    assert rhyme_group_name("一句") is None


def test_template_forcing():
    p = plan([PoemRequest(template="??明月，是?！")], VOCAB)
    rows = rows_of(p)
    assert p.lengths.tolist() == [9]
    assert (rows[0] == HAN).all() and (rows[1] == HAN).all() and (rows[6] == HAN).all()
    for t, c in ((2, "明"), (3, "月"), (4, "，"), (5, "是"), (7, "！"), (8, EOS)):
        assert (rows[t] == one_hot(c)).all()
    p = plan([PoemRequest(template="??明月，是?！", begin="春")], VOCAB)
    assert (rows_of(p)[0] == one_hot("春")).all()


def test_template_with_regular_shape_takes_that_form():
    template = "床前明月?，疑是地上?。举头望明月，低头思故?。"
    p = plan([PoemRequest(template=template, rhyme=True, first_line_rhymes=True)], VOCAB)
    assert p.rhyme_set[0].nonzero()[0].tolist() == [4, 10, 22]
    assert p.initial_groups[0, 0, prosody.RHYME_GROUPS.index("十唐")]
    assert check_poem("床前明月光，疑是地上霜。举头望明月，低头思故乡。", PoemRequest(template=template, rhyme=True)) == []
    # 静夜思 is not regulated verse: 上 (仄) where the 平起 pattern needs 平
    with pytest.raises(PoetryError, match="'上' at line 2, character 4"):
        plan([PoemRequest(template=template, tones="loose")], VOCAB)


def test_acrostic_and_begin_with_form():
    p = plan([PoemRequest(form="qijue", acrostic="春夏秋冬", begin="春风")], VOCAB)
    rows = rows_of(p)
    for i, c in enumerate("春夏秋冬"):
        assert (rows[i * 8] == one_hot(c)).all()
    assert (rows[1] == one_hot("风")).all() and (rows[2] == HAN).all()
    p = plan([PoemRequest(form="wulv", acrostic="春秋")], VOCAB)
    rows = rows_of(p)
    assert (rows[0] == one_hot("春")).all() and (rows[6] == one_hot("秋")).all() and (rows[12] == HAN).all()


def test_title_steps():
    p = plan([PoemRequest(form="wujue", title="春望"), PoemRequest(max_len=5)], VOCAB, ModelConfig(condition="title"))
    assert p.content_start.tolist() == [3, 1]
    assert p.lengths.tolist() == [3 + 25, 1 + 5 + 1]
    rows = rows_of(p, 0)
    assert (rows[0] == one_hot("春")).all() and (rows[1] == one_hot("望")).all() and (rows[2] == one_hot(SEP)).all()
    assert (rows[3] == HAN).all()
    assert (rows_of(p, 1)[0] == one_hot(SEP)).all()  # no title: empty title, then SEP


def test_keyword_steps_follow_the_title_field_and_every_model_pulls_towards_them():
    requests = [PoemRequest(form="wujue", title="春望", keywords="风月"), PoemRequest(keywords="山"), PoemRequest()]
    p = plan(requests, VOCAB, ModelConfig(condition="keywords"))
    assert p.content_start.tolist() == [6, 3, 0]  # 春望 SEP 风月 SEP | SEP 山 SEP | no prompt: BOS content
    prompt = [rows_of(p, 0)[i] for i in range(6)]
    assert [int(np.argmax(r)) for r in prompt] == [VOCAB.id("春"), VOCAB.id("望"), SEP, VOCAB.id("风"), VOCAB.id("月"), SEP]
    assert (rows_of(p, 0)[6] == HAN).all()
    wanted = lambda b: sorted(VOCAB.tokens[i] for i in np.flatnonzero(p.keyword_tokens[b]))  # noqa: E731
    assert wanted(0) == ["月", "风"] and wanted(1) == ["山"] and wanted(2) == []
    unconditioned = plan([PoemRequest(form="wujue", keywords="山")], VOCAB)  # no prompt, the same pull
    assert unconditioned.content_start.tolist() == [0] and unconditioned.keyword_tokens[0, VOCAB.id("山")]
    titled = plan([PoemRequest(title="春山", keywords="山")], VOCAB)  # no prompt; the title's other characters pulled
    assert titled.content_start.tolist() == [0] and np.flatnonzero(titled.title_weights[0]).tolist() == [VOCAB.id("春")]
    assert titled.title_weights[0, VOCAB.id("春")] == pytest.approx(titles.weight("春"))
    with pytest.raises(PoetryError, match="keywords character 'ℤ' is not in the model's vocabulary"):
        plan([PoemRequest(keywords="ℤ")], VOCAB, ModelConfig(condition="keywords"))


def test_rhyme_steps_and_groups():
    for name, form in forms.FORMS.items():
        for first in (False, True):
            p = plan([PoemRequest(form=name, rhyme=True, first_line_rhymes=first)], VOCAB)
            width = form.chars_per_line + 1
            lines = [i for i in range(form.lines) if i % 2 == 1 or (first and i == 0)]
            assert p.rhyme_set[0].nonzero()[0].tolist() == [i * width + form.chars_per_line - 1 for i in lines]
            assert p.initial_groups[0, 0].any()
            for g in p.initial_groups[0, 0].nonzero()[0]:
                for t in p.rhyme_set[0].nonzero()[0]:
                    assert (p.mask_table[p.step_masks[0, t]] & p.group_members[g]).sum() >= len(lines)
    assert (p.group_members == VP.group_members).all()
    assert not (p.group_members & ~HAN).any() and not (p.group_members & ~VP.ping).any()


@pytest.mark.parametrize(
    "name, start, first, text",
    [
        ("wujue", "ze", False, "仄仄平平仄，平平仄仄平。平平平仄仄，仄仄仄平平。"),
        ("qijue", "ping", True, "平平仄仄仄平平，仄仄平平仄仄平。仄仄平平平仄仄，平平仄仄仄平平。"),
        ("wulv", "ping", False, "平平平仄仄，仄仄仄平平。仄仄平平仄，平平仄仄平。"
                                "平平平仄仄，仄仄仄平平。仄仄平平仄，平平仄仄平。"),
    ],
)
def test_tone_masks_follow_textbook_patterns(name, start, first, text):
    for level in ("strict", "loose"):
        p = plan([PoemRequest(form=name, tones=level, tone_start=start, first_line_rhymes=first)], VOCAB)
        rows = rows_of(p)
        for t, symbol in enumerate(text):
            if symbol in "，。":
                continue
            line_pos = t % (forms.FORMS[name].chars_per_line + 1)
            enforced = level == "strict" or line_pos % 2 == 1 or line_pos == forms.FORMS[name].chars_per_line - 1
            want = HAN & (VP.ping if symbol == "平" else VP.ze) if enforced else HAN
            assert (rows[t] == want).all(), (level, t, symbol)


def test_typical_requests_are_feasible():
    for name in forms.FORMS:
        for tones in ("off", "loose", "strict"):
            for start in ("ping", "ze"):
                for first in (False, True):
                    request = PoemRequest(form=name, rhyme=True, tones=tones, tone_start=start, first_line_rhymes=first)
                    plan([request], VOCAB)


# --------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "request_, words",
    [
        (PoemRequest(form="sonnet"), "unknown form"),
        (PoemRequest(form="wujue", tones="medium"), "tones must be"),
        (PoemRequest(form="wujue", tones="loose", tone_start="up"), "tone start"),
        (PoemRequest(max_len=0), "max_len"),
        (PoemRequest(acrostic="春夏"), "acrostic need"),
        (PoemRequest(rhyme=True), "rhyme need"),
        (PoemRequest(tones="strict"), "tones need"),
        (PoemRequest(form="wujue", first_line_rhymes=True), "first_line_rhymes"),
        (PoemRequest(form="wujue", acrostic="春夏秋冬雪"), "more characters than"),
        (PoemRequest(form="wujue", acrostic="春a"), "Han"),
        (PoemRequest(form="wujue", begin="春风十里扬州"), "longer than a line"),
        (PoemRequest(form="wujue", begin="春，"), "Han"),
        (PoemRequest(begin="春风", max_len=1), "max_len"),
        (PoemRequest(form="wujue", template="?????，?????。"), "shape of 五绝"),
        (PoemRequest(template="??a??"), "'a'"),
        (PoemRequest(template="?????、?????。"), "'、'"),
        (PoemRequest(template="??鹳雀楼"), "'鹳'"),
        (PoemRequest(form="wujue", acrostic="鹳"), "'鹳'"),
        (PoemRequest(begin="鹳"), "'鹳'"),
        (PoemRequest(title="鹳"), "title character '鹳'"),
        (PoemRequest(template="春???", begin="秋"), "'秋'"),
        (PoemRequest(template="?????，?????。?????，?????。", acrostic="春风"), None),  # accepted
        (PoemRequest(template="春????，?????。?????，?????。", acrostic="秋"), "'秋'"),
        # 仄起: line 1 is 仄仄平平仄, 东 is 平 only
        (PoemRequest(form="wujue", tones="strict", tone_start="ze", acrostic="东"), "'东'"),
        (PoemRequest(form="wujue", template="?????，????花。?????，????风。", rhyme=True), "share no"),
        (PoemRequest(form="wujue", template="????花，????花。?????，?????。", rhyme=True,
                     first_line_rhymes=True), "repeat"),
        (PoemRequest(form="wujue", template="?????，????雨。?????，?????。", rhyme=True), "no 平"),
        (PoemRequest(form="wujue", template="?????，????东。?????，?????。", rhyme=True, tones="strict"), None),
    ],
)
def test_errors_name_the_problem(request_, words):
    if words is None:
        plan([request_], VOCAB)
        return
    with pytest.raises(PoetryError) as caught:
        plan([request_], VOCAB)
    message = str(caught.value)
    assert words in message and "\n" not in message


def test_tone_clash_suggests_the_other_start():
    with pytest.raises(PoetryError, match=r"'东' at line 1, character 1 is 平 .* needs 仄 .*tone_start='ping'"):
        plan([PoemRequest(form="wujue", tones="strict", tone_start="ze", acrostic="东")], VOCAB)


def test_tone_starts_that_fit():
    assert tone_starts_that_fit(PoemRequest(form="wujue", tones="strict", acrostic="东")) == ["ping"]
    assert tone_starts_that_fit(PoemRequest(form="wujue", tones="strict", acrostic="动")) == ["ze"]
    assert tone_starts_that_fit(PoemRequest(form="wujue", tones="strict", acrostic="东动")) == ["ping"]
    assert tone_starts_that_fit(PoemRequest(form="wujue", tones="loose", acrostic="东")) == ["ping", "ze"]
    assert tone_starts_that_fit(PoemRequest(form="wujue", tones="strict", acrostic="东东")) == []
    assert tone_starts_that_fit(PoemRequest(begin="东")) == ["ping", "ze"]


def test_fixed_tone_conflict_is_fine_where_not_enforced():
    plan([PoemRequest(form="wujue", tones="loose", tone_start="ze", acrostic="东")], VOCAB)


def test_vocabulary_too_small():
    tiny = Vocab(RESERVED + tuple("东花人山水月雨，。"))  # one 平 rhyme per group
    with pytest.raises(PoetryError, match="no rhyme group has enough"):
        plan([PoemRequest(form="wujue", rhyme=True)], tiny)
    no_ze = Vocab(RESERVED + tuple("东花天人山，。"))
    with pytest.raises(PoetryError, match="needs 仄"):
        plan([PoemRequest(form="wujue", tones="loose")], no_ze)
    no_comma = Vocab(RESERVED + tuple("东花天人山。"))
    with pytest.raises(PoetryError, match="'，'"):
        plan([PoemRequest(form="wujue")], no_comma)


def test_batch_error_names_the_poem():
    with pytest.raises(PoetryError, match=r"^poem 2: .*unknown form"):
        plan([PoemRequest(), PoemRequest(form="x")], VOCAB)


# --------------------------------------------------------------------------
# The validator


def test_check_poem_accepts_and_rejects():
    jingyesi = "床前明月光，疑是地上霜。举头望明月，低头思故乡。"
    assert check_poem(jingyesi, PoemRequest(form="wujue", rhyme=True, first_line_rhymes=True)) == []
    assert check_poem(jingyesi, PoemRequest(form="wujue", acrostic="床疑举低", begin="床前")) == []
    assert check_poem(jingyesi, PoemRequest(form="qijue"))[0].startswith("shape")
    assert check_poem(jingyesi, PoemRequest(form="wujue", acrostic="床疑低"))[0].startswith("acrostic")
    assert check_poem(jingyesi, PoemRequest(begin="窗前"))[0].startswith("begin")
    assert check_poem(jingyesi, PoemRequest(max_len=10))[0].startswith("free")
    assert check_poem("", PoemRequest()) == ["free: the poem is empty"]
    assert check_poem(jingyesi, PoemRequest(template="床前明月?，?是地上霜。举头望明月，低头思故乡。")) == []
    assert check_poem(jingyesi, PoemRequest(template="床前明月?，?是地下霜。举头望明月，低头思故乡。"))
    chunxiao = "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。"
    assert any(p.startswith("rhyme") for p in check_poem(chunxiao, PoemRequest(form="wujue", rhyme=True)))
    shanxing = "远上寒山石径斜，白云生处有人家。停车坐爱枫林晚，霜叶红于二月花。"
    request = PoemRequest(form="qijue", rhyme=True, first_line_rhymes=True, tones="loose", tone_start="ze")
    # 斜 is xié to a modern reader (xiá is in no pypinyin phrase), 六麻 with 家 花 in 平水韵
    assert check_poem(shanxing, request) == ["rhyme: the rhyming characters share no group (斜 三皆, 家 一麻, 花 一麻)"]
    assert check_poem(shanxing, PoemRequest(**{**vars(request), "scheme": "pingshui"})) == []
    problems = check_poem(shanxing, PoemRequest(form="qijue", tones="strict", tone_start="ze", first_line_rhymes=True))
    assert problems and all(p.startswith("tones") for p in problems)
    assert problems == [
        "tones: line 2, character 3 '生' is 平, the pattern needs 仄",
        "tones: line 4, character 1 '霜' is 平, the pattern needs 仄",
    ]


# --------------------------------------------------------------------------
# The key property: a decoder following the contract never gets stuck, and
# every poem it finishes passes the independent validator.


def simulate(p, rng, mode, prefer=()):
    """Reference sampler of the decoder contract (constraints module docstring).

    ``mode`` "random" draws new logits each step, "fixed" keeps one vector
    (a model that always wants the same characters); ``prefer`` tokens get
    a large bonus (an adversarial model).
    """
    b_size, _ = p.step_masks.shape
    v_size = p.mask_table.shape[1]
    fixed_logits = rng.normal(size=v_size)
    fixed_logits[list(prefer)] += 100
    poems = []
    for b in range(b_size):
        group_set = p.initial_groups[b].copy()
        used = np.zeros(v_size, bool)
        count = p.fixed_counts[b].astype(int)
        tokens = []
        for t in range(p.lengths[b]):
            allowed = p.mask_table[p.step_masks[b, t]].copy()
            if p.context_need[b, t]:
                prev = tokens[-1] if tokens else BOS
                hit = (p.pair_kinds[prev] & p.context_need[b, t]) > 0
                allowed[[y for y in p.pair_tokens[prev][hit] if y < v_size]] = False
            if s := p.rhyme_set[b, t]:
                allowed &= (group_set[s - 1][:, None] & p.group_members).any(axis=0) & ~used
            limited = allowed & (count < MAX_USES)
            if p.no_repeat[b, t]:
                assert limited.any() or not p.repeat_guaranteed[b], f"poem {b}, step {t}: repeats leave nothing"
                allowed = limited if limited.any() else allowed
            assert allowed.any(), f"poem {b}, step {t}: nothing allowed"
            logits = fixed_logits if mode == "fixed" else rng.normal(size=v_size) * 3
            v = int(np.argmax(np.where(allowed, logits, -np.inf)))
            tokens.append(v)
            if v == EOS:
                break
            count[v] += p.no_repeat[b, t]
            if s:
                group_set[s - 1] &= p.group_members[:, v]
            if s or p.rhyme_watch[b, t]:
                used[v] = True
        assert tokens[-1] == EOS, "poem did not end"
        poems.append(tokens)
    return poems


def test_free_rhymes_never_take_a_later_fixed_rhyme():
    # line 4 must end in 东; a model that loves 东 must not spend it on line 2
    # (repeats allowed, or it would spend 风 on line 1 twice); the 风 ending line 1
    # is not heard as a rhyme twice either, so line 2 takes another 十一庚 rhyme
    request = PoemRequest(form="wujue", template="?????，?????。?????，????东。", rhyme=True, allow_repeats=True)
    p = plan([request], VOCAB)
    assert not p.mask_table[p.step_masks[0, 10], VOCAB.id("东")]
    assert p.initial_groups[0, 0].nonzero()[0].tolist() == [prosody.RHYME_GROUPS.index("十一庚")]
    (tokens,) = simulate(p, np.random.default_rng(0), "fixed", prefer=[VOCAB.id("东"), VOCAB.id("风")])
    content = VOCAB.decode(tokens)
    assert content[4] == "风" and content[10] not in "风东" and content[22] == "东"
    assert check_poem(content, request) == []


def test_repeated_rhymes_are_refused_even_by_a_stubborn_model():
    request = PoemRequest(form="qilv", rhyme=True, first_line_rhymes=True, tones="strict")
    p = plan([request], VOCAB)
    favourites = [VOCAB.id(c) for c in "东风中"]
    (tokens,) = simulate(p, np.random.default_rng(1), "fixed", prefer=favourites)
    content = VOCAB.decode(tokens)
    assert check_poem(content, request) == []


def han_text(draw, chars, low, high):
    return "".join(draw(st.lists(chars, min_size=low, max_size=high)))


@st.composite
def poem_requests(draw, alphabet=COMMON):
    chars = st.sampled_from(alphabet)
    form_name = draw(st.sampled_from(forms.FORM_NAMES))
    form = forms.FORMS.get(form_name)
    template, shape = "", form
    if draw(st.integers(0, 3)) == 0:
        if shape is None:
            shape = draw(st.sampled_from([None, *forms.FORMS.values()]))
        fixed_p = draw(st.sampled_from([0.0, 0.1, 0.3]))
        pick = lambda: draw(chars) if draw(st.floats(0, 1)) < fixed_p else "?"  # noqa: E731
        if shape is None:
            template = "".join(
                draw(st.sampled_from("，。？！")) if draw(st.integers(0, 5)) == 0 else pick()
                for _ in range(draw(st.integers(1, 20)))
            )
        else:
            template = "".join(
                "".join(pick() for _ in range(shape.chars_per_line)) + shape.line_end(i) for i in range(shape.lines)
            )
    begin = acrostic = ""
    if shape is not None:
        if draw(st.booleans()):
            acrostic = han_text(draw, chars, 1, shape.lines)
        if draw(st.booleans()):
            begin = han_text(draw, chars, 1, shape.chars_per_line)
            if acrostic:
                begin = acrostic[0] + begin[1:]
            if template:
                begin = "".join(t if t != "?" else c for t, c in zip(template, begin))
    elif not template and draw(st.booleans()):
        begin = "".join(draw(st.lists(st.sampled_from(alphabet + "，。a "), min_size=1, max_size=5)))
    rhyme = shape is not None and draw(st.booleans())
    tones = draw(st.sampled_from(prosody.TONE_LEVELS)) if shape is not None else "off"
    first = (rhyme or tones != "off") and draw(st.booleans())
    scheme = draw(st.sampled_from(prosody.SCHEME_NAMES))
    return PoemRequest(
        scheme=scheme,
        rhyme_loose=rhyme and draw(st.booleans()),
        allow_repeats=draw(st.integers(0, 3)) == 0,
        form=form_name,
        begin=begin,
        acrostic=acrostic,
        template=template,
        rhyme=rhyme,
        first_line_rhymes=first,
        tones=tones,
        tone_start=draw(st.sampled_from(("ping", "ze"))),
        title=han_text(draw, chars, 1, 4) if draw(st.integers(0, 3)) == 0 else "",
        keywords=han_text(draw, chars, 1, 3) if draw(st.integers(0, 3)) == 0 else "",
        max_len=draw(st.integers(5, 40)),
        stop_at_eos=draw(st.integers(0, 3)) > 0,
    )


@st.composite
def vocab_and_requests(draw):
    """The full test vocabulary, or a random small one where rhymes run short."""
    if draw(st.booleans()):
        return VOCAB, draw(st.lists(poem_requests(), min_size=1, max_size=3))
    alphabet = "".join(draw(st.lists(st.sampled_from(COMMON), min_size=15, max_size=80, unique=True)))
    vocab = Vocab(RESERVED + tuple(alphabet) + OTHER)
    return vocab, draw(st.lists(poem_requests(alphabet), min_size=1, max_size=3))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=vocab_and_requests(),
    condition=st.sampled_from(CONDITIONS),
    seed=st.integers(0, 2**32 - 1),
    mode=st.sampled_from(("random", "fixed")),
)
def test_masked_decoding_always_gives_valid_poems(case, condition, seed, mode):
    vocab, requests = case
    if any(r.keywords for r in requests):
        condition = "keywords"
    try:
        p = plan(requests, vocab, ModelConfig(condition=condition))
    except PoetryError as error:
        note(f"rejected: {error}")
        # a batch is rejected only because one of its requests is
        rejected = 0
        for r in requests:
            try:
                plan([r], vocab, ModelConfig(condition=condition))
            except PoetryError:
                rejected += 1
        assert rejected, error
        return
    rng = np.random.default_rng(seed)
    for b, tokens in enumerate(simulate(p, rng, mode)):
        start = p.content_start[b]
        assert list(tokens[:start]) == prompt_ids(vocab, condition, requests[b])
        content = vocab.decode(tokens[start:])
        note(f"poem {b}: {content!r} for {requests[b]}")
        problems = check_poem(content, requests[b])
        if not p.repeat_guaranteed[b]:  # a vocabulary too small to promise it: only repeats may slip
            problems = [q for q in problems if not q.startswith("repeats")]
        assert problems == []


# --------------------------------------------------------------------------
# Schemes, heard readings and repeats


def test_pingshui_plan_and_loose_rhyme():
    p = plan([PoemRequest(form="wujue", rhyme=True, scheme="pingshui"), PoemRequest(form="wujue", rhyme=True)], VOCAB)
    assert p.group_members.shape[0] == 30 + 14  # each scheme's groups, one after the other
    assert not p.initial_groups[0, 0, 30:].any() and not p.initial_groups[1, 0, :30].any()
    assert not p.context_need[0].any() and p.context_need[1].any()  # pairs matter to the modern ear only
    east_pine = "山中一日东，水上看青松。明月照何处，春风吹不同。"   # 东 一东, 松 二冬: 邻韵
    strict = PoemRequest(form="wujue", rhyme=True, scheme="pingshui")
    assert check_poem(east_pine, strict)[0].startswith("rhyme: the rhyming characters share no group")
    assert check_poem(east_pine, PoemRequest(**{**vars(strict), "rhyme_loose": True})) == []
    with pytest.raises(PoetryError, match="unknown rhyme scheme"):
        plan([PoemRequest(form="wujue", rhyme=True, scheme="guangyun")], VOCAB)
    with pytest.raises(PoetryError, match="rhyme_loose needs rhyme"):
        plan([PoemRequest(form="wujue", rhyme_loose=True)], VOCAB)


def test_pingshui_tones_count_rusheng_as_ze():
    p = plan([PoemRequest(form="wujue", tones="strict", scheme="pingshui", tone_start="ze")], VOCAB)
    ping_row = rows_of(p)[2]  # 仄仄平平仄: the third character is 平
    assert not ping_row[VOCAB.id("白")] and not ping_row[VOCAB.id("国")]  # 入声
    with pytest.raises(PoetryError, match="acrostic character '白'"):
        plan([PoemRequest(form="wujue", tones="strict", scheme="pingshui", tone_start="ping", acrostic="白")], VOCAB)
    plan([PoemRequest(form="wujue", tones="strict", tone_start="ping", acrostic="白")], VOCAB)  # bái is 平 in xinyun


def test_a_stubborn_model_is_heard_as_the_masks_promise():
    # a model in love with 长 (zhǎng alone, cháng in 长安) and 安 must not make a 平 of a heard 仄
    request = PoemRequest(form="wulv", rhyme=True, tones="strict", first_line_rhymes=True)
    p = plan([request], VOCAB)
    for prefer in ("长安", "相思", "看中"):
        (tokens,) = simulate(p, np.random.default_rng(2), "fixed", prefer=[VOCAB.id(c) for c in prefer])
        content = VOCAB.decode(tokens)
        lines = [line[:-1] for line in forms.split_lines(content)]
        pattern = tone_patterns.tone_pattern(5, 8, "ping", True)
        assert check_poem(content, request) == [], content
        assert prosody.heard_rhyme_ok(lines, True) and prosody.heard_tones_ok(lines, pattern), content


def test_no_character_more_than_twice_unless_relaxed():
    favourite = [VOCAB.id(c) for c in "风"]
    request = PoemRequest(form="qilv")
    p = plan([request], VOCAB)
    assert p.repeat_guaranteed.all() and p.no_repeat[0].sum() == 56
    (tokens,) = simulate(p, np.random.default_rng(3), "fixed", prefer=favourite)
    content = VOCAB.decode(tokens)
    assert content.count("风") == MAX_USES and check_poem(content, request) == []
    assert check_poem("风" * 3 + content[3:], request)[0].startswith("repeats")
    relaxed = PoemRequest(form="qilv", allow_repeats=True)
    (tokens,) = simulate(plan([relaxed], VOCAB), np.random.default_rng(3), "fixed", prefer=favourite)
    assert VOCAB.decode(tokens).count("风") == 56 and check_poem(VOCAB.decode(tokens), relaxed) == []
    # fixed characters count first, and may themselves repeat as the template says
    template = PoemRequest(template="风风风??，?????。?????，?????。")
    p = plan([template], VOCAB)
    assert p.fixed_counts[0, VOCAB.id("风")] == 3
    (tokens,) = simulate(p, np.random.default_rng(3), "fixed", prefer=favourite)
    assert VOCAB.decode(tokens).count("风") == 3 and check_poem(VOCAB.decode(tokens), template) == []
    # a template of no form is limited too (issue 29: "?" x 5000 came back as …茫茫茫茫…)
    shapeless = PoemRequest(template="?" * 40 + "。")
    (tokens,) = simulate(plan([shapeless], VOCAB), np.random.default_rng(3), "fixed", prefer=favourite)
    content = VOCAB.decode(tokens)
    assert content.count("风") == MAX_USES and check_poem(content, shapeless) == []
    assert check_poem("风" * 3 + content[3:], shapeless)[0].startswith("repeats")
    assert check_poem("风" * 3 + content[3:], dataclasses.replace(shapeless, allow_repeats=True)) == []


def test_the_line_end_pull_marks_the_first_lines_last_free_character():
    requests = [
        PoemRequest(form="wujue"),
        PoemRequest(form="qilv", rhyme=True),  # seven characters: no regular line is longer, the model expects the end
        PoemRequest(),  # free: no line length to know
        PoemRequest(template="春风???，???月?。"),
        PoemRequest(template="春风??月，?????。"),  # the first line's end is fixed
        PoemRequest(form="wujue", begin="白日依山尽"),  # so is this one's
    ]
    p = plan(requests, VOCAB)
    marked = [np.flatnonzero(row).tolist() for row in p.line_end_step]
    assert marked == [[4], [], [], [4], [], []]
    prefixed = plan([PoemRequest(form="wujue", keywords="山")], VOCAB, ModelConfig(condition="keywords"))
    assert np.flatnonzero(prefixed.line_end_step[0]).tolist() == [prefixed.content_start[0] + 4]
    assert p.end_lift.shape == (len(VOCAB),) and p.end_lift[VOCAB.id("不")] < 0 < p.end_lift[VOCAB.id("时")]


def test_a_fixed_rhyme_character_with_a_second_reading_still_stands():
    """Hypothesis found it: 燕 (yān 平, yàn 仄) fixed at the first line's rhyme left nothing allowed there."""
    request = PoemRequest(form="wujue", rhyme=True, first_line_rhymes=True, allow_repeats=True, begin="春春春春燕")
    p = plan([request], VOCAB)
    for mode in ("random", "fixed"):
        (tokens,) = simulate(p, np.random.default_rng(0), mode)
        content = VOCAB.decode(tokens)
        assert content.startswith("春春春春燕") and check_poem(content, request) == []
