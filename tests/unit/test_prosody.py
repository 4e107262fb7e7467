"""Rhyme groups, tone classes and 平仄 patterns (poetry_rnn.verse.prosody, tone_patterns, vocab_prosody)."""

import collections
import json
import os

import numpy as np
import pytest

from poetry_rnn.verse import prosody, tone_patterns
from poetry_rnn.generation import vocab_prosody
from poetry_rnn.verse.prosody import PING, RHYME_GROUPS, ZE
from poetry_rnn.model.vocab import RESERVED, Vocab
from conftest import SHARED_CORPUS

TANG = os.path.join(SHARED_CORPUS, "quan_tang_shi")


def group(name):
    return RHYME_GROUPS.index(name)


def test_fourteen_groups_in_order():
    assert RHYME_GROUPS == (
        "一麻", "二波", "三皆", "四开", "五微", "六豪", "七尤",
        "八寒", "九文", "十唐", "十一庚", "十二齐", "十三支", "十四姑",
    )
    assert prosody.get_scheme("xinyun").groups == RHYME_GROUPS


@pytest.mark.parametrize(
    "chars, name",
    [
        ("花家霞沙华", "一麻"),
        ("歌河多波罗", "二波"),
        ("街鞋些谐", "三皆"),
        ("来开台怀哀", "四开"),
        ("归飞回微辉", "五微"),
        ("高桃遥潮消", "六豪"),
        ("流秋愁楼舟", "七尤"),
        ("天年烟前山还船", "八寒"),
        ("人春云门群魂", "九文"),
        ("长光乡霜江", "十唐"),
        ("东中风情明松", "十一庚"),
        ("衣期溪西鱼儿", "十二齐"),
        ("知诗时枝丝词", "十三支"),
        ("无湖孤图书", "十四姑"),
    ],
)
def test_known_rhyme_words(chars, name):
    for c in chars:
        assert group(name) in prosody.char_rhymes(c, PING), (c, name)
    # and as a rhyme: distinct 平 characters sharing the group
    assert group(name) in prosody.shared_rhymes(chars)


def test_zhi_is_not_qi():
    for c in "知诗时":
        assert group("十二齐") not in prosody.char_rhymes(c), c
    for c in "衣期":
        assert group("十三支") not in prosody.char_rhymes(c), c
    assert not prosody.shared_rhymes("诗衣")


def test_finals_table_covers_every_final_once():
    scheme = prosody.get_scheme()
    finals = set(scheme.finals)
    for final in ("a ia ua o e uo ie ve ai uai ei uei ao iao ou iou an ian uan van "
                  "en in uen vn ang iang uang eng ing ong iong ueng i er v -i u").split():
        assert final in finals, final
    assert scheme.group_of("-i") != scheme.group_of("i")
    assert scheme.group_of("er") == scheme.group_of("v") == scheme.group_of("i") == group("十二齐")


def test_heteronyms_take_every_group_and_class():
    assert {group("十唐"), group("十一庚")} <= prosody.char_rhymes("行")  # xíng / háng
    assert prosody.char_tones("看") == {PING, ZE}                          # kān / kàn
    assert prosody.char_tones("重") == {PING, ZE}                          # chóng / zhòng
    assert prosody.char_tones("长") == {PING, ZE}                          # cháng / zhǎng
    # a 仄-only reading gives no 平 rhyme: 看 is kān and kàn, both 八寒; 长 zhǎng is 仄
    assert prosody.char_rhymes("长", PING) == {group("十唐")}
    assert prosody.char_rhymes("看") == prosody.char_rhymes("看", PING) == {group("八寒")}


def test_tone_classes():
    assert prosody.char_tones("东") == {PING}
    assert prosody.char_tones("动") == {ZE}
    assert prosody.char_tones("雨") == {ZE}
    assert prosody.char_rhymes("雨", PING) == frozenset()
    # 一 reads yī / yí / yì for pypinyin: both classes
    assert prosody.char_tones("一") == {PING, ZE}
    # 入声 characters count by their Mandarin tone
    assert prosody.char_tones("白") == {PING}
    assert prosody.char_tones("国") == {PING}


def test_unknown_and_non_han():
    for c in "，。a 1□":
        assert not prosody.is_han(c)
        assert prosody.char_tones(c) == frozenset()
        assert prosody.char_rhymes(c) == frozenset()
    assert prosody.is_han("〇") and prosody.is_han("𫗪")
    # 𫗪 (simplified 餧, made by OpenCC) is read through its traditional form
    assert prosody.char_tones("𫗪")


COMMON = (
    "春花秋月何时了往事知多少小楼昨夜又东风故国不堪回首明中床前光疑是地上霜举头望低思乡"
    "白日依山尽黄河入海流欲穷千里目更一层楼红豆生南国来发几枝愿君采撷此物最相国破城草木深"
    "感恨别鸟惊心烽火连三家书抵万金独在异为客每逢佳节倍亲遥兄弟登高处遍插茱萸少人"
)


def test_common_poem_characters_have_tones_and_rhymes():
    for c in COMMON:
        assert prosody.char_tones(c), c
        assert prosody.char_rhymes(c), c


# 平仄 patterns, checked against the textbook (王力《诗词格律》).
@pytest.mark.parametrize(
    "size, lines, start, first, text",
    [
        (5, 4, ZE, False, "仄仄平平仄，平平仄仄平。平平平仄仄，仄仄仄平平。"),
        (5, 4, ZE, True, "仄仄仄平平，平平仄仄平。平平平仄仄，仄仄仄平平。"),
        (5, 4, PING, False, "平平平仄仄，仄仄仄平平。仄仄平平仄，平平仄仄平。"),
        (5, 4, PING, True, "平平仄仄平，仄仄仄平平。仄仄平平仄，平平仄仄平。"),
        (7, 4, PING, True, "平平仄仄仄平平，仄仄平平仄仄平。仄仄平平平仄仄，平平仄仄仄平平。"),
        (7, 4, ZE, True, "仄仄平平仄仄平，平平仄仄仄平平。平平仄仄平平仄，仄仄平平仄仄平。"),
        (7, 4, PING, False, "平平仄仄平平仄，仄仄平平仄仄平。仄仄平平平仄仄，平平仄仄仄平平。"),
        (5, 8, ZE, False, "仄仄平平仄，平平仄仄平。平平平仄仄，仄仄仄平平。"
                          "仄仄平平仄，平平仄仄平。平平平仄仄，仄仄仄平平。"),
        (7, 8, ZE, True, "仄仄平平仄仄平，平平仄仄仄平平。平平仄仄平平仄，仄仄平平仄仄平。"
                         "仄仄平平平仄仄，平平仄仄仄平平。平平仄仄平平仄，仄仄平平仄仄平。"),
    ],
)
def test_tone_patterns_match_textbook(size, lines, start, first, text):
    expected = tuple(line[:-1] for line in text.replace("。", "。|").replace("，", "，|").split("|") if line)
    assert tone_patterns.tone_pattern(size, lines, start, first) == expected


def test_relax_loose_keeps_even_positions_and_last():
    pattern = tone_patterns.tone_pattern(7, 4, PING, False)
    assert tone_patterns.relax(pattern, "loose")[0] == "中平中仄中平仄"
    assert tone_patterns.relax(pattern, "strict") == pattern
    assert tone_patterns.relax(tone_patterns.tone_pattern(5, 4, ZE), "loose")[1] == "中平中仄平"


def test_rhyme_ok_on_real_poems():
    jingyesi = ["床前明月光，", "疑是地上霜。", "举头望明月，", "低头思故乡。"]
    assert prosody.rhyme_ok(jingyesi)
    assert prosody.rhyme_ok(jingyesi, first_line_rhymes=True)
    assert prosody.rhyme_ok(["白日依山尽，", "黄河入海流。", "欲穷千里目，", "更上一层楼。"])
    chunxiao = ["春眠不觉晓，", "处处闻啼鸟。", "夜来风雨声，", "花落知多少。"]
    assert not prosody.rhyme_ok(chunxiao)  # 仄韵: 鸟/少 are not 平 rhymes
    assert not prosody.rhyme_ok(["山光好，", "明月光。", "江水长，", "明月光。"])  # repeated rhyme
    assert not prosody.rhyme_ok(["白日依山尽，", "黄河入海流。"])  # one line end rhymes with nothing
    assert prosody.rhyme_ok(["江南春水流，", "明月照高楼。"], first_line_rhymes=True)  # two line ends that rhyme


def test_best_tone_pattern_of_a_regular_poem():
    shanxing = ["远上寒山石径斜，", "白云生处有人家。", "停车坐爱枫林晚，", "霜叶红于二月花。"]
    share, pattern, start, first = tone_patterns.best_tone_pattern(shanxing, "loose")
    assert (share, start, first) == (1.0, ZE, True)
    agree, checked = tone_patterns.tone_agreement(shanxing, tone_patterns.tone_pattern(7, 4, ZE, True))
    assert checked == 28 and agree >= 24  # 白 石 are 入声 (仄) in Tang, 平 in Mandarin
    assert tone_patterns.best_tone_pattern(["一二三，", "四五六七。"]) is None


def small_vocab(chars):
    return Vocab(RESERVED + tuple(dict.fromkeys(chars)))


def test_vocab_prosody_arrays():
    vocab = small_vocab("东动看花，。a□")
    vp = vocab_prosody.VocabProsody.build(vocab)
    assert vp is vocab_prosody.VocabProsody.build(vocab)  # cached
    n, g = len(vocab), len(RHYME_GROUPS)
    assert vp.han.shape == vp.ping.shape == vp.ze.shape == (n,)
    assert vp.group_members.shape == (g, n)
    ids = {c: vocab.id(c) for c in "东动看花，。a□"}
    assert not vp.han[: len(RESERVED)].any()
    assert [bool(vp.han[ids[c]]) for c in "东动看花，。a□"] == [True] * 4 + [False] * 4
    assert vp.ping[ids["东"]] and not vp.ze[ids["东"]]
    assert vp.ze[ids["动"]] and not vp.ping[ids["动"]]
    # a free 看 is heard as its default kàn (kān only inside phrases such as 看守)
    assert vp.ze[ids["看"]] and not vp.ping[ids["看"]] and prosody.char_tones("看") == {PING, ZE}
    assert vp.group_members[group("十一庚"), ids["东"]]
    assert not vp.group_members[:, ids["动"]].any()  # 仄 only: never a rhyme
    assert not vp.group_members[:, ids["看"]].any()
    assert vp.group_members[group("一麻"), ids["花"]]
    assert vp.unknown == ()


def test_vocab_prosody_is_fast_for_a_large_vocabulary():
    import time

    vocab = small_vocab(chr(c) for c in range(0x4E00, 0x4E00 + 7000))
    began = time.perf_counter()
    vp = vocab_prosody.VocabProsody.build(vocab)
    assert time.perf_counter() - began < 5.0
    assert vp.han[len(RESERVED):].all()
    assert vp.ping.sum() > 3000 and vp.ze.sum() > 3000


# Characters of poet.tang.{0,1000,2000,3000}.json (after OpenCC t2s) that
# neither pypinyin nor the OpenCC variant fallback can read.
KNOWN_UNREADABLE = set("𧹁𪒶𧞔𣙙𦋺𩩉𥫗")


@pytest.mark.skipif(not os.path.isdir(TANG), reason=f"no corpus at {SHARED_CORPUS} (set $POETRY_RNN_CORPUS)")
def test_real_corpus_vocabulary_has_tones():
    import opencc

    convert = opencc.OpenCC("t2s").convert
    counts = collections.Counter()
    for n in (0, 1000, 2000, 3000):
        with open(os.path.join(TANG, f"poet.tang.{n}.json"), encoding="utf-8") as handle:
            for poem in json.load(handle):
                counts.update(convert("".join(poem["paragraphs"])))
    vocab = Vocab.build(["".join(counts.elements())], min_count=1)
    vp = vocab_prosody.VocabProsody.build(vocab)
    unknown = set(vp.unknown)
    # 么: pypinyin's default is the neutral me, and mó/yāo are in fewer than MIN_PHRASES phrases
    assert unknown <= KNOWN_UNREADABLE | {"么"}, unknown - KNOWN_UNREADABLE
    for i, c in enumerate(vocab.tokens):
        if vp.han[i]:
            # heard with no tone: a character pypinyin reads only through its OpenCC
            # variant, or whose default is neutral (子 zi): never free at a 平/仄 step
            heard = prosody.default_reading(c)
            assert vp.ping[i] or vp.ze[i] or c in unknown or heard is None or heard.tone == 0, c
    assert np.count_nonzero(vp.han) > 4000


# --------------------------------------------------------------------------
# Readings a reader hears


def test_reader_readings_keep_default_and_phrase_readings():
    def syllables(c):
        return {(r.final, r.tone) for r in prosody.char_readings(c)}

    assert syllables("看") == {("an", 4), ("an", 1)}           # kàn, and kān (看守, 15 phrases)
    assert syllables("还") == {("ai", 2), ("uan", 2)}          # hái, huán; never fú
    assert syllables("家") == {("ia", 1), ("ia", 0)}           # jiā (jia in 8 phrases); never gū
    assert syllables("身") == {("en", 1)}                      # shēn; never juān
    assert syllables("眠") == {("ian", 2)}                     # mián; never mǐn
    assert ("ai", 1) not in syllables("思")                    # sāi: one phrase (于思), dropped
    assert prosody.char_readings("长")[0].tone == 3            # pypinyin's default comes first: zhǎng
    kept, dropped, once = prosody.reading_rule_counts("看还家身眠思")
    assert (kept, dropped, once) == (3, 8, 1)  # kān huán jia | fú, jià jie gū, juān, miǎn mǐn, sāi | sāi


def test_no_rare_reading_can_make_a_rhyme():
    rare = {"还": "十四姑", "家": "十四姑", "身": "八寒"}      # fú, gū, juān
    vocab = small_vocab("还家身枯湖天年，。")
    vp = vocab_prosody.VocabProsody.build(vocab)
    for c, name in rare.items():
        assert group(name) not in prosody.char_rhymes(c), c
        assert group(name) not in prosody.char_rhymes(c, PING), c
        assert not vp.group_members[group(name), vocab.id(c)], c
    assert not prosody.shared_rhymes("还枯") and not prosody.shared_rhymes("家湖") and not prosody.shared_rhymes("身天")
    assert not prosody.rhyme_ok(["山中何处好，", "日暮不知还。", "一路行来远，", "江边见老枯。"])
    assert group("八寒") in prosody.shared_rhymes("还天年")  # huán rhymes, as a reader hears it in 生还


def test_a_line_is_heard_phrase_by_phrase():
    assert [r.tone for r in prosody.heard_readings("长安一片月，")][:2] == [2, 1]   # 长安: cháng
    assert prosody.heard_readings("何处长")[-1].tone == 3                          # alone: zhǎng
    assert prosody.heard_readings("𧹁月")[0] is None
    assert prosody.phrase_pairs()["长安"] & prosody.CHANGES_FIRST
    jingyesi = ["床前明月光，", "疑是地上霜。", "举头望明月，", "低头思故乡。"]
    assert prosody.heard_rhyme_ok(jingyesi) and prosody.rhyme_ok(jingyesi)
    # 还 read alone is hái (四开), so a reader does not hear it rhyme with 山 and 间
    lines = ["青山横北郭，", "白水绕东山。", "此地一为别，", "孤蓬万里还。"]
    assert prosody.rhyme_ok(lines) and not prosody.heard_rhyme_ok(lines)
    pattern = tone_patterns.relax(tone_patterns.tone_pattern(5, 4, ZE), "loose")
    assert prosody.heard_tones_ok(["白日依山尽，", "黄河入海流。", "欲穷千里目，", "更上一层楼。"], pattern)
    assert prosody.heard_tones_ok(["长安月，"], ("平中中",)) and not prosody.heard_tones_ok(["春风长，"], ("中中平",))


# --------------------------------------------------------------------------
# 平水韵


def pingshui_group(name):
    return prosody.get_scheme("pingshui").groups.index(name)


# 30 characters, one per 平声 group and none a group's own title character, in
# simplified form (the table is traditional): chosen from the group lists as
# printed in 王力《诗词格律》 and the 《诗韵》 handbooks, recalled rather than
# read off a page here, so each was then confirmed against a second,
# independent table, the 平声 rows of hulbji/couyun's hanzi_class.py (MIT).
PINGSHUI_SPOT_CHECK = {
    "红": "上平一東", "松": "上平二冬", "窗": "上平三江", "诗": "上平四支", "飞": "上平五微",
    "书": "上平六魚", "孤": "上平七虞", "啼": "上平八齊", "街": "上平九佳", "来": "上平十灰",
    "春": "上平十一眞", "云": "上平十二文", "门": "上平十三元", "安": "上平十四寒", "关": "上平十五删",
    "天": "下平一先", "桥": "下平二蕭", "交": "下平三肴", "高": "下平四豪", "多": "下平五歌",
    "斜": "下平六麻", "乡": "下平七陽", "声": "下平八庚", "亭": "下平九靑", "灯": "下平十蒸",
    "楼": "下平十一尤", "林": "下平十二侵", "南": "下平十三覃", "帘": "下平十四鹽", "衫": "下平十五咸",
}


@pytest.mark.parametrize("c, name", sorted(PINGSHUI_SPOT_CHECK.items()))
def test_pingshui_spot_check(c, name):
    assert pingshui_group(name) in prosody.char_rhymes(c, PING, "pingshui")
    assert PING in prosody.char_tones(c, "pingshui")


def test_pingshui_groups_tones_and_neighbours():
    scheme = prosody.get_scheme("pingshui")
    assert len(scheme.groups) == 30 and scheme.groups[0] == "上平一東" and scheme.groups[-1] == "下平十五咸"
    assert len(set(PINGSHUI_SPOT_CHECK.values())) == 30
    for c in "白国一月石雪":                       # 入声: 仄, whatever Mandarin says
        assert prosody.char_tones(c, "pingshui") == {ZE}, c
        assert not prosody.char_rhymes(c, PING, "pingshui"), c
    assert prosody.char_tones("看", "pingshui") == {PING, ZE}   # 十四寒 and 十五翰
    assert not prosody.shared_rhymes("东松", "pingshui")        # 一东 and 二冬 are two groups
    loose = prosody.get_scheme("pingshui", loose=True)
    assert prosody.shared_rhymes("东松", loose)                 # 邻韵 mixed only when loose
    assert not prosody.shared_rhymes("东花", loose)
    # a simplified character belongs to every group of its traditional forms: 后 is 後 and 后
    assert prosody.char_tones("后", "pingshui") == {ZE}
    assert {pingshui_group("上平十五删"), pingshui_group("下平一先")} <= prosody.char_rhymes("还", PING, "pingshui")
    shanxing = ["远上寒山石径斜，", "白云生处有人家。", "停车坐爱枫林晚，", "霜叶红于二月花。"]
    assert prosody.rhyme_ok(shanxing, True, "pingshui") and not prosody.rhyme_ok(shanxing, True)
