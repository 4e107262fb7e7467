"""Rhyme groups and tones (平仄) per character, and the 平仄 patterns of Tang verse.

Readings come from ``pypinyin`` with heteronyms: a character with several
readings belongs to every rhyme group and tone class that one of its readings
gives (行 is xíng and háng, 看 is kān and kàn, so 看 is both 平 and 仄).

Tone class (modern, as 中华新韵 prescribes): tones 1 and 2 (阴平, 阳平) are
平, tones 3 and 4 (上, 去) are 仄; a neutral-tone reading says nothing. There
is no 入声: characters that were 入声 in Tang Chinese (白, 国, 一) count by
their Mandarin tone.

Rhyme groups: a :class:`RhymeScheme` maps finals to groups, selected by name
(``scheme="zhonghua_xinyun"``), so another book (平水韵, which needs a table
per character rather than per final) can be added as data beside it.

The 平仄 patterns of 近体诗 are derived, not listed: see :func:`tone_pattern`.

Everything here is per character or per line; :class:`VocabProsody` turns it
into numpy arrays over a vocabulary, which ``constraints`` turns into masks.
"""

import dataclasses
import functools
import unicodedata

import numpy as np

from poetry_rnn.errors import PoetryError
from poetry_rnn.forms import PUNCTUATION

PING, ZE = "ping", "ze"
TONE_CLASSES = (PING, ZE)
# Pattern symbols: 平 and 仄 are required tones, 中 is "either" (可平可仄).
P, Z, EITHER = "平", "仄", "中"
TONE_SYMBOL = {PING: P, ZE: Z}
TONE_LEVELS = ("off", "loose", "strict")

# Finals written as pypinyin's strict finals (``to_finals(strict=True)``):
# y/w are not initials (yi -> i, wu -> u, yu -> v, wei -> uei, you -> iou,
# wen -> uen, yun -> vn, weng -> ueng), ü is written v. The apical vowel of
# zhi chi shi ri zi ci si, which pypinyin also writes i, is "-i" here
# (:func:`_final` tells them apart by the initial).
_APICAL_INITIALS = frozenset(("zh", "ch", "sh", "r", "z", "c", "s"))


@dataclasses.dataclass(frozen=True, eq=False)  # hashable by identity (lru_cache keys)
class RhymeScheme:
    """A rhyme book: its groups, and which finals (strict pypinyin) fall in each."""

    name: str
    chinese: str
    groups: tuple          # group names, index = group id
    finals: dict           # final -> group index
    source: str

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
    return RhymeScheme(name, chinese, groups, finals, source)


# 《中华新韵》(中华诗词学会, 2005): the 35 finals of 汉语拼音 in 14 groups, by the
# readings of 《新华字典》, with 平 = 阴平/阳平 and 仄 = 上/去 (no 入声).
# Checked against the group lists of the couyun project (新韵 table
# 1 a ia ua | 2 o e uo | 3 ie üe | 4 ai uai | 5 ei uei | 6 ao iao | 7 ou iou |
# 8 an ian uan üan | 9 en in uen ün | 10 ang iang uang |
# 11 eng ing ong iong ueng | 12 i er ü | 13 -i | 14 u). Notes: er (儿, 耳)
# is in 十二齐 with i and ü; -i after zh ch sh r z c s is its own group 十三支;
# ê (欸) goes with ie/üe in 三皆; io (哟, written yo) is o for pypinyin, 二波.
ZHONGHUA_XINYUN = _scheme(
    "zhonghua_xinyun",
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

SCHEMES = {ZHONGHUA_XINYUN.name: ZHONGHUA_XINYUN}
DEFAULT_SCHEME = ZHONGHUA_XINYUN.name
RHYME_GROUPS = ZHONGHUA_XINYUN.groups


def get_scheme(scheme=DEFAULT_SCHEME):
    if isinstance(scheme, RhymeScheme):
        return scheme
    try:
        return SCHEMES[scheme]
    except KeyError:
        raise PoetryError(f"unknown rhyme scheme {scheme!r} (choose from {', '.join(SCHEMES)})") from None


# --------------------------------------------------------------------------
# Characters


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


def _syllables(c):
    from pypinyin import Style, pinyin

    found = pinyin(c, style=Style.TONE3, heteronym=True, errors="ignore", neutral_tone_with_five=True)
    return found[0] if found else []


@functools.lru_cache(maxsize=None)
def char_readings(c):
    """All readings pypinyin knows for ``c`` (heteronyms included), or ().

    A character pypinyin cannot read is read through its traditional (or
    simplified) form by OpenCC: converting the corpus to simplified makes
    rare forms such as 𫗪 (餧) that pypinyin's table lacks.
    """
    if not is_han(c):
        return ()
    from pypinyin.contrib.tone_convert import to_finals, to_initials

    syllables = _syllables(c)
    for converter in _variant_converters() if not syllables else ():
        variant = converter.convert(c)
        if len(variant) == 1 and variant != c:
            syllables = _syllables(variant)
            if syllables:
                break
    readings = []
    for syllable in syllables:
        tone = int(syllable[-1]) if syllable[-1:].isdigit() else 5
        base = syllable.rstrip("012345")
        initial = to_initials(base, strict=True)
        final = _final(initial, to_finals(base, strict=True))
        reading = Reading(initial, final, 0 if tone == 5 else tone)
        if reading not in readings:
            readings.append(reading)
    return tuple(readings)


def _tone_class(tone):
    return PING if tone in (1, 2) else ZE if tone in (3, 4) else None


@functools.lru_cache(maxsize=None)
def char_tones(c):
    """frozenset of 'ping'/'ze' the character can take; empty if unknown."""
    return frozenset(t for t in (_tone_class(r.tone) for r in char_readings(c)) if t)


@functools.lru_cache(maxsize=None)
def char_rhymes(c, tone=None, scheme=DEFAULT_SCHEME):
    """Group indices of ``c``'s readings; ``tone='ping'`` keeps only 平 readings.

    A rhyme in 近体诗 is 平, so "can end a rhyming line in group g" is
    ``g in char_rhymes(c, tone='ping')``: a 平 reading whose final is in g
    (年 is nián 八寒 and nìng 十一庚, but only 八寒 is a 平 rhyme).
    """
    scheme = get_scheme(scheme)
    groups = set()
    for r in char_readings(c):
        if tone is not None and _tone_class(r.tone) != tone:
            continue
        group = scheme.group_of(r.final)
        if group is not None:
            groups.add(group)
    return frozenset(groups)


def tone_ok(c, required):
    """Does ``c`` fit a pattern symbol: 平, 仄, or 中 (anything)?"""
    if required == EITHER:
        return True
    tones = char_tones(c)
    return (PING if required == P else ZE) in tones


# --------------------------------------------------------------------------
# 平仄 patterns of 近体诗


def _other(tone):
    return Z if tone == P else P


def _five_char_line(second, last):
    """The 5-character line with 2nd-character tone ``second`` and last ``last``.

    Feet of two alternate: 2nd and 4th characters differ. The four base types
    follow from where the line ends:
      last differs from the 4th -> a single closing character: 仄仄平平仄 (A), 平平仄仄平 (B)
      last equals the 4th       -> a closing foot, the 3rd copies the 1st foot: 平平平仄仄 (C), 仄仄仄平平 (D)
    """
    fourth = _other(second)
    if last != fourth:
        return second * 2 + fourth * 2 + last
    return second * 3 + fourth * 2


def tone_pattern(chars_per_line, lines, start="ping", first_line_rhymes=False):
    """The 平仄 pattern of a regulated poem, one string of 平/仄 per line.

    ``start`` is 平起/仄起: the tone of the first line's 2nd character.
    Derivation (粘对 and rhyme): even lines (and line 1 when 首句入韵) rhyme
    and end 平, the others end 仄; line 2's 2nd character is opposite to line
    1's (对), line 3's equals line 2's (粘), and so on through 8 lines. A
    5-character line is then fixed by its 2nd and last tones
    (:func:`_five_char_line`); a 7-character line prefixes two characters
    opposite to its 5-character core's first tone, so its 2nd character is
    the opposite of the core's.
    """
    if chars_per_line not in (5, 7):
        raise PoetryError(f"平仄 patterns exist for lines of 5 or 7 characters, not {chars_per_line}")
    if start not in TONE_SYMBOL:
        raise PoetryError(f"tone start must be 'ping' or 'ze', not {start!r}")
    second = TONE_SYMBOL[start]
    if chars_per_line == 7:
        second = _other(second)  # the 5-character core's 2nd character
    pattern = []
    for i in range(lines):
        if i > 0:
            second = _other(second) if i % 2 == 1 else second  # 对 after odd lines, 粘 after even
        rhymes = i % 2 == 1 or (i == 0 and first_line_rhymes)
        core = _five_char_line(second, P if rhymes else Z)
        pattern.append(core if chars_per_line == 5 else _other(core[0]) * 2 + core)
    return tuple(pattern)


def relax(pattern, level):
    """Replace unenforced positions with 中.

    ``strict`` keeps every position; ``loose`` keeps the 2nd, 4th and 6th
    characters and the last one (一三五不论，二四六分明); ``off`` keeps none.
    """
    if level not in TONE_LEVELS:
        raise PoetryError(f"tones must be one of {', '.join(TONE_LEVELS)}, not {level!r}")
    out = []
    for line in pattern:
        if level == "strict":
            out.append(line)
        elif level == "off":
            out.append(EITHER * len(line))
        else:
            out.append("".join(t if (j % 2 == 1 or j == len(line) - 1) else EITHER for j, t in enumerate(line)))
    return tuple(out)


def all_tone_patterns(chars_per_line, lines):
    """{(start, first_line_rhymes): pattern} for the four variants of a shape."""
    return {
        (start, flr): tone_pattern(chars_per_line, lines, start, flr)
        for start in TONE_CLASSES
        for flr in (False, True)
    }


# --------------------------------------------------------------------------
# Whole lines (for validators and evaluators, on generated or real poems)


def line_chars(line):
    """A line's characters without its closing punctuation (and surrounding spaces)."""
    return line.strip().rstrip(PUNCTUATION).strip()


def tone_agreement(lines, pattern):
    """(agreeing, checked): positions whose character fits the pattern symbol.

    ``lines`` are the poem's lines (punctuation allowed); 中 positions are not
    counted; a character with no known tone counts as disagreeing; lines or
    characters beyond the pattern are ignored, missing ones count as checked
    and disagreeing.
    """
    agree = checked = 0
    for i, required_line in enumerate(pattern):
        chars = line_chars(lines[i]) if i < len(lines) else ""
        for j, required in enumerate(required_line):
            if required == EITHER:
                continue
            checked += 1
            if j < len(chars) and tone_ok(chars[j], required):
                agree += 1
    return agree, checked


def best_tone_pattern(lines, level="strict"):
    """The best-fitting standard pattern for a regular poem's lines.

    Returns ``(share, pattern, start, first_line_rhymes)`` where ``share`` is
    the fraction of enforced positions agreeing, maximised over 平起/仄起 and
    首句入韵 or not; None when the lines are not all 5 or all 7 characters.
    """
    sizes = {len(line_chars(line)) for line in lines}
    if len(sizes) != 1 or not sizes <= {5, 7}:
        return None
    (size,) = sizes
    best = None
    for (start, flr), pattern in all_tone_patterns(size, len(lines)).items():
        pattern = relax(pattern, level)
        agree, checked = tone_agreement(lines, pattern)
        share = agree / checked if checked else 1.0
        if best is None or share > best[0]:
            best = (share, pattern, start, flr)
    return best


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

    With a poem of fewer than 2 lines there is nothing to rhyme: False.
    """
    chars = rhyme_chars(lines, first_line_rhymes)
    if not chars or not all(chars):
        return False
    return len(set(chars)) == len(chars) and bool(shared_rhymes(chars, scheme))


# --------------------------------------------------------------------------
# Arrays over a vocabulary


@dataclasses.dataclass(frozen=True, eq=False)
class VocabProsody:
    """Per-token prosody of a vocabulary (arrays indexed by token id).

    han:         (V,) bool, the token is one Han character (reserved ids False)
    ping, ze:    (V,) bool, the token can be 平 / 仄
    rhymes:      (V, G) bool, some reading's final is in group g (any tone)
    ping_rhymes: (V, G) bool, some 平 reading's final is in group g
    unknown:     Han tokens with no tone class (pypinyin has no reading, or
                 only neutral-tone ones), in id order
    """

    scheme: RhymeScheme
    han: np.ndarray
    ping: np.ndarray
    ze: np.ndarray
    rhymes: np.ndarray
    ping_rhymes: np.ndarray
    unknown: tuple

    @property
    def group_members(self):
        """(G, V) bool: tokens usable as the rhyme of group g (平, Han)."""
        return self.ping_rhymes.T

    @classmethod
    def build(cls, vocab, scheme=DEFAULT_SCHEME):
        scheme = get_scheme(scheme)
        key = (vocab.fingerprint, scheme.name)
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
        tokens = vocab.tokens
        n, g = len(tokens), len(scheme.groups)
        han = np.zeros(n, bool)
        ping = np.zeros(n, bool)
        ze = np.zeros(n, bool)
        rhymes = np.zeros((n, g), bool)
        ping_rhymes = np.zeros((n, g), bool)
        unknown = []
        reserved = len(tokens) - len(vocab.chars)  # PAD UNK BOS EOS SEP
        for i, token in enumerate(tokens):
            if i < reserved or not is_han(token):
                continue
            han[i] = True
            tones = char_tones(token)
            ping[i] = PING in tones
            ze[i] = ZE in tones
            if not tones:
                unknown.append(token)
            for group in char_rhymes(token, None, scheme):
                rhymes[i, group] = True
            for group in char_rhymes(token, PING, scheme):
                ping_rhymes[i, group] = True
        for array in (han, ping, ze, rhymes, ping_rhymes):
            array.setflags(write=False)
        built = cls(scheme, han, ping, ze, rhymes, ping_rhymes, tuple(unknown))
        _CACHE[key] = built
        return built


_CACHE = {}
