"""Ci tune patterns (词牌): the pattern of one tune, reading the package's table, and checking a ci against it.

A tune fixes a ci's shape: how many lines of how many characters, which
line ends rhyme (and where the rhyme changes), which positions are 平 and
which 仄. The corpus says none of this (each ci names only its tune), so the
table is read off the ci themselves: ``corpus.cipai_table`` builds
``data/cipai.json`` from the training part of ``data/ci.txt`` (how, and its
thresholds, are in its module and docs/data.md). This module is what
everything above reads, with no corpus and no TensorFlow.

The words here:

* a ci's *lines* are its pieces between punctuation marks (，。？！), so a
  short 读 such as 满江红's 三字句 is a line; a *variant* of a tune is one
  sequence of line lengths;
* a line end *rhymes* with another when their characters share a 部 of
  词林正韵 (``cilin``); the line ends that rhyme together are one *rhyme
  set*, named A, B, … in order of first line (菩萨蛮 changes rhyme every two
  lines: AABBCCDD);
* a position's *tone* is 平, 仄 or 中 (either), read through 平水韵
  (``prosody.char_tones`` with the ``pingshui`` scheme, so 入声 characters
  are 仄, as the Song poets heard them). A character the table gives both
  tones, or none, says nothing: it never counts for or against a position.
"""

import dataclasses
import difflib
import functools
import json
import os

from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.verse import cilin, forms, prosody

TABLE = os.path.join(prosody.DATA, "cipai.json")
TONE_SCHEME = "pingshui"
NO_RHYME = "."  # in ``CiPattern.rhymes``: a line whose end does not rhyme
ALIAS_MARK = "・"  # the corpus writes a tune under another name as 酹江月・念奴娇 (alias・tune)
SYMBOL_TONE = {prosody.P: prosody.PING, prosody.Z: prosody.ZE}
# What a written ci rhymes by (``--ci_rhyme``): 词林正韵, the Song poets' book, with tones by 平水韵
# (入声 仄), or 中华新韵, rhyme and tones as a reader today hears them.
RHYME_BOOKS = ("cilin", "xinyun")
BOOK_TONE_SCHEME = {"cilin": TONE_SCHEME, "xinyun": "xinyun"}
LIST = "list"  # --cipai list: the tunes, not a tune


def rhyme_groups(c, book="cilin"):
    """The groups ``c`` can end a rhyme of a ci in, any tone: 词林正韵's 部, or 中华新韵's groups of its readings."""
    if book == "cilin":
        return cilin.groups_of(c)
    return prosody.char_rhymes(c, None, "xinyun")


def group_names(book="cilin"):
    """The names of ``book``'s rhyme groups, by index (第一部 ...; 一麻 ...)."""
    return cilin.GROUPS if book == "cilin" else prosody.RHYME_GROUPS


def shared_groups(chars, book="cilin"):
    """The groups every character of ``chars`` rhymes in (characters the book lacks say nothing)."""
    shared = frozenset(range(len(group_names(book))))
    for c in chars:
        groups = rhyme_groups(c, book)
        if groups:
            shared &= groups
    return shared


def tune_name(title):
    """The tune a ci's title names: 念奴娇 for 念奴娇 and for 酹江月・念奴娇 (an alias, then the tune)."""
    return title.rsplit(ALIAS_MARK, 1)[-1]


def split_ci(content):
    """(texts, marks): each line's characters, and the mark after it ('' where the last line has none)."""
    pieces = forms.split_lines(content)
    texts = tuple(prosody.line_chars(piece) for piece in pieces)
    marks = tuple(piece[-1] if piece[-1] in forms.PUNCTUATION else "" for piece in pieces)
    return texts, marks


def char_tone(c):
    """'ping' or 'ze' when 平水韵 gives ``c`` exactly one tone class, else None (two, or unknown)."""
    tones = prosody.char_tones(c, TONE_SCHEME)
    return next(iter(tones)) if len(tones) == 1 else None


@dataclasses.dataclass(frozen=True)
class CiPattern:
    """One tune's common variant as the Song ci write it, and how many of them follow it.

    ``tones[i]``: line i, one of 平/仄/中 per character; ``punctuation[i]``:
    the mark after it; ``rhymes[i]``: its rhyme set's letter, or NO_RHYME.
    ``ci``: the tune's training ci; ``variant_ci`` of them have these line
    lengths (the pattern was read off them), a share ``variant_share``; of
    those, ``rhyme_share`` keep every rhyme set in one 部
    and ``tone_share`` fit every 平/仄 position; ``follow_share`` of all the
    tune's ci do all three.
    """

    tune: str
    tones: tuple
    punctuation: str
    rhymes: str
    aliases: tuple = ()
    ci: int = 0
    variant_ci: int = 0
    variant_share: float = 0.0
    rhyme_share: float = 0.0
    tone_share: float = 0.0
    follow_share: float = 0.0

    @property
    def lengths(self):
        """Characters per line: the variant, which a ci must match before it is compared further."""
        return tuple(len(line) for line in self.tones)

    def rhyme_sets(self):
        """{letter: (line indices)}, the sets in order of their first line."""
        sets = {}
        for i, letter in enumerate(self.rhymes):
            if letter != NO_RHYME:
                sets.setdefault(letter, []).append(i)
        return {letter: tuple(lines) for letter, lines in sets.items()}

    def to_json(self):
        """The table's entry for this tune (tuples become JSON lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data):
        """The pattern from its table entry, lists back to tuples so patterns stay hashable and compare equal."""
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})


@dataclasses.dataclass(frozen=True)
class CiCheck:
    """How one ci meets a pattern: its shape, its rhymes, and its tones position by position.

    ``tones_checked``: the 平 or 仄 positions whose character says a tone;
    ``tones_off``: of those, the ones it gets wrong. A ci of another shape
    is not compared further (rhymes False, no tones checked).
    """

    shape_ok: bool
    rhymes_ok: bool
    tones_checked: int
    tones_off: int

    @property
    def tones_ok(self):
        """Of the pattern's shape, and no 平/仄 position contradicted."""
        return self.shape_ok and self.tones_off == 0

    @property
    def follows(self):
        """Shape, rhymes and tones: what the table's follow_share counts."""
        return self.rhymes_ok and self.tones_ok


def rhymes_follow(pattern, texts):
    """Do the line ends of each rhyme set share a 部 (characters 词林正韵 lacks skipped)?"""
    return all(shared_groups([texts[i][-1:] for i in lines]) for lines in pattern.rhyme_sets().values())


def tones_off(pattern, texts):
    """(checked, off): the pattern's 平/仄 positions whose character says a tone, and those it contradicts."""
    checked = off = 0
    for required_line, text in zip(pattern.tones, texts):
        for required, c in zip(required_line, text):
            tone = char_tone(c) if required in SYMBOL_TONE else None
            if tone is not None:
                checked += 1
                off += tone != SYMBOL_TONE[required]
    return checked, off


def check(pattern, content):
    """A ``CiCheck`` of one ci's content (``tune:content``'s content) against ``pattern``."""
    texts, _ = split_ci(content)
    if tuple(map(len, texts)) != pattern.lengths:
        return CiCheck(shape_ok=False, rhymes_ok=False, tones_checked=0, tones_off=0)
    checked, off = tones_off(pattern, texts)
    return CiCheck(shape_ok=True, rhymes_ok=rhymes_follow(pattern, texts), tones_checked=checked, tones_off=off)


def read_table(path=TABLE):
    """{tune: CiPattern} from a table ``corpus.cipai_table.write_table`` wrote (default: the package's).

    Read once per path, however it is asked for, so every caller shares the same patterns.
    """
    return _read_table(os.fspath(path))


@functools.lru_cache(maxsize=None)
def _read_table(path):
    """read_table's cached half, keyed by the path as a string."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        raise PoetryError(f"cannot read the tune table {path}: {error}") from error
    patterns = (CiPattern.from_json(entry) for entry in data["tunes"])
    return {pattern.tune: pattern for pattern in patterns}


def lookup(name, path=TABLE):
    """The pattern of the tune called ``name``, or of the tune ``name`` is another name of (酹江月 -> 念奴娇).

    An unknown name raises PoetryError naming the closest tunes the table knows.
    """
    table = read_table(path)
    name = tune_name(name.strip())
    if name in table:
        return table[name]
    for pattern in table.values():
        if name in pattern.aliases:
            return pattern
    names = list(table) + [alias for pattern in table.values() for alias in pattern.aliases]
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.3)
    near = f"close: {'、'.join(close)}" if close else f"the commonest: {'、'.join(list(table)[:6])}"
    raise PoetryError(f"{name!r} is not a tune the table knows ({near}; '{LIST}' shows all {len(table)})")


def describe(pattern):
    """One line about a tune: its name, size, rhyme sets and how many Song ci it was read from."""
    chars = sum(pattern.lengths)
    sets = len(pattern.rhyme_sets())
    return (f"{pattern.tune}\t{len(pattern.lengths)} lines, {chars} characters, {sets} rhyme set{'s' * (sets > 1)}; "
            f"{pattern.ci} Song ci, {pattern.follow_share:.0%} follow the pattern")


def tune_list(path=TABLE):
    """The tunes the table knows, one line each, commonest first (what --cipai list prints)."""
    return "\n".join(describe(pattern) for pattern in read_table(path).values())
