"""How one raw chinese-poetry entry becomes a clean poem, or why it is dropped.

The corpus is messy: editorial notes in brackets (variant readings, sources),
characters the editors supplied for gaps, footnote marks, quotation and title
marks, punctuation beyond ，。？！, and traditional characters. Each rule
here says what it does to one entry and why; :func:`clean_poem` applies them
to one entry's title and paragraphs and returns the simplified
:class:`CleanPoem`, naming the rules that edited it (``CHANGES``) and the one
that drops it, if any (``DROPS``). ``prepare`` walks the corpus files, drops
malformed entries and duplicates, counts every rule in its summary and writes
the result; the rules are apart from that walking so that each can be read,
and tested, one poem at a time.
"""

import dataclasses
import functools
import re

import opencc

from poetry_rnn.corpus import reading
from poetry_rnn.verse import forms, prosody

# Cleaning rules, in the order prepare's summary prints them. A rule in CHANGES
# edits a poem that may still be kept; a rule in DROPS removes it, and each
# dropped poem is counted under exactly one (the first that applies).
CHANGES = {
    "notes": "editorial notes （…）(…)〖…〗【…】〔…〕 removed",
    "footnote_marks": "footnote marks [一] removed",
    "supplied": "editor-supplied characters [字] unbracketed",
    "unclosed_note": "unclosed note cut to the end",
    "marks": "quote/title marks and spaces dropped",
    "punctuation": "punctuation mapped onto ，。？！",
    "stray_punctuation": "leading or doubled punctuation removed",
    "title": "spaces, colons or stray brackets removed from the title",
}
DROPS = {
    "malformed": "entry without a list of paragraphs",
    "empty": "empty after cleaning",
    "unmatched_bracket": "closing bracket without an opening one",
    "latin_digit": "Latin letters or digits",
    "non_han": "□ or other non-Han character",
    "too_long": "longer than --max_len",
    "not_regular": "not 五绝/七绝/五律/七律 (--forms)",
    "duplicate": "duplicate content",
}

# Square brackets mark characters the editors supplied for a gap in the
# manuscript ("凡校補字，均括以[]"): the character belongs to the verse, and
# dropping it would shorten the line. Only a bracketed number is a footnote
# mark. Every other bracket pair holds an editorial note (variant readings
# "（一作…）", sources, dates) that is not part of the poem.
BRACKETS = {"（": "）", "(": ")", "【": "】", "〔": "〕", "〖": "〗", "[": "]", "［": "］"}
SUPPLIED = ("[", "［")
_ALL_BRACKETS = re.escape("".join(BRACKETS) + "".join(BRACKETS.values()))
# Innermost pairs only (no bracket inside), so nested notes peel from inside
# out and an opening bracket never pairs with the wrong closing one.
INNER_PAIR = re.compile(
    "|".join(f"{re.escape(o)}[^{_ALL_BRACKETS}]*{re.escape(c)}" for o, c in BRACKETS.items())
)
ANY_BRACKET = re.compile(f"[{_ALL_BRACKETS}]")
UNCLOSED_NOTE = re.compile(f"[{re.escape(''.join(BRACKETS))}].*")
FOOTNOTE_NUMBER = re.compile(r"[一二三四五六七八九十〇○0-9]+")

# Marks that wrap words (quotations, book titles) carry no sound and no line
# structure: the words stay, the marks go. Spaces are layout, not verse.
MARKS = re.compile(r"""[「」『』《》〈〉“”‘’"'·・\s]""")
# Other punctuation maps onto the nearest of ，。？！ so that lines still end
# where the poet paused: ；and ; close a clause that is mostly the end of a
# couplet, like 。 (in this corpus ； falls at a couplet end 4 times in 5); ：
# introduces what follows within the same sentence, like ，; 、 is a list
# pause, like ，. ASCII and full-width variants mean the same as their
# ideographic forms.
PUNCTUATION = {
    **dict.fromkeys(",﹐､、:：﹕", "，"),
    **dict.fromkeys(".．｡;；﹔", "。"),
    **dict.fromkeys("?﹖", "？"),
    **dict.fromkeys("!﹗", "！"),
}
OTHER_PUNCTUATION = re.compile(f"[{re.escape(''.join(PUNCTUATION))}]")
LEADING_PUNCTUATION = re.compile(f"^[{forms.PUNCTUATION}]+")
# After a note between two marks ("句，（…）。") keep the first mark: ？ and ！
# come first and carry the meaning.
DOUBLED_PUNCTUATION = re.compile(f"([{forms.PUNCTUATION}])[{forms.PUNCTUATION}]+")
LATIN_DIGIT = re.compile(r"[A-Za-z0-9Ａ-Ｚａ-ｚ０-９]")
# CJK Unified Ideographs (basic block, extensions A to I) and compatibility
# ideographs; □ ○ ● (unknown characters), ⿰ (a character spelled out by
# its parts), private-use code points and … (text left out) are not Han.
TITLE_DROPS = re.compile(r"[\s:：﹕]")


@functools.lru_cache(maxsize=None)
def _converter():
    """The OpenCC traditional -> simplified converter, built once per process.

    ``t2s.json`` is the config file name every opencc release accepts (1.4
    also takes the bare "t2s"). It converts character by character but looks
    up phrases first, so one-to-many characters (乾坤 / 乾燥) come out right;
    that is also why title and content are converted as whole strings.
    """
    return opencc.OpenCC("t2s.json").convert


@dataclasses.dataclass(frozen=True)
class CleanPoem:
    """One poem after cleaning: ``dropped`` names the rule that removed it, if any."""

    title: str
    content: str
    changes: frozenset
    dropped: str | None = None


def _strip_notes(text, fired):
    """Remove bracketed notes, innermost first; unbracket supplied characters."""

    def replace(match):
        pair = match.group()
        inside = pair[1:-1]
        if pair[0] not in SUPPLIED:
            fired.add("notes")
            return ""
        if FOOTNOTE_NUMBER.fullmatch(inside):
            fired.add("footnote_marks")
            return ""
        fired.add("supplied")
        return inside

    while True:
        text, count = INNER_PAIR.subn(replace, text)
        if not count:
            return text


def _cut_unclosed_note(text, fired):
    """Cut from an opening bracket that never closes to the end of ``text``.

    Such a bracket starts a note whose closing bracket was lost: in this
    corpus it is almost always a source cited after the verse
    ("…松影落扶疎。（《古今圖書集成》…"), so the verse before it is kept.
    """
    cut = UNCLOSED_NOTE.sub("", text)
    if cut != text:
        fired.add("unclosed_note")
    return cut


def _clean_title(title, fired):
    """Notes out, spaces and colons out, and any bracket left over.

    The colon separates title from content in poems.txt. Titles are never
    dropped (only content is verse), so a stray closing bracket is removed
    rather than counted against the poem.
    """
    title = _cut_unclosed_note(_strip_notes(title, fired), fired)
    tidy = TITLE_DROPS.sub("", ANY_BRACKET.sub("", title))
    if tidy != title:
        fired.add("title")
    return tidy


def _clean_content(paragraphs, fired):
    """Join the paragraphs, remove notes and marks, map punctuation onto ，。？！.

    Paragraphs are joined first because a note often opens in one paragraph
    and closes in a later one.
    """
    text = _cut_unclosed_note(_strip_notes("".join(paragraphs), fired), fired)
    text, marks = MARKS.subn("", text)
    if marks:
        fired.add("marks")
    text, mapped = OTHER_PUNCTUATION.subn(lambda match: PUNCTUATION[match.group()], text)
    if mapped:
        fired.add("punctuation")
    tidy = DOUBLED_PUNCTUATION.sub(r"\1", LEADING_PUNCTUATION.sub("", text))
    if tidy != text:
        fired.add("stray_punctuation")
    return tidy


def _drop_rule(content, max_len, forms_only):
    """The first drop rule that applies to cleaned, simplified content, or None."""
    if not content:
        return "empty"
    if ANY_BRACKET.search(content):
        return "unmatched_bracket"
    if LATIN_DIGIT.search(content):
        return "latin_digit"
    if not all(c in forms.PUNCTUATION or prosody.is_han(c) for c in content):  # the one definition of a Han character
        return "non_han"
    if len(content) > max_len:
        return "too_long"
    if forms_only and forms.classify(content) is None:
        return "not_regular"
    return None


def clean_poem(title, paragraphs, max_len=reading.DEFAULT_MAX_LEN, forms_only=False):
    """Clean one corpus entry into a ``CleanPoem`` (simplified, ``dropped`` if rejected).

    ``paragraphs`` must be a list of strings (callers count other shapes as
    malformed). Title and content are converted to simplified characters in
    one OpenCC call, joined by a newline, which neither can contain after
    cleaning and which OpenCC passes through unchanged.

    ``forms_only`` keeps only poems whose shape is one of forms.FORMS
    (forms.classify is not None: 4 or 8 equal lines of 5 or 7 characters
    ending ，。，。…), the same test the generator's form constraints and the
    evaluator use, so a "regular" training poem is one the model could be
    asked to write.
    """
    fired = set()
    raw_title = _clean_title(title, fired)
    raw_content = _clean_content(paragraphs, fired)
    simple_title, simple_content = _converter()(f"{raw_title}\n{raw_content}").split("\n", 1)
    return CleanPoem(
        title=simple_title,
        content=simple_content,
        changes=frozenset(fired),
        dropped=_drop_rule(simple_content, max_len, forms_only),
    )
