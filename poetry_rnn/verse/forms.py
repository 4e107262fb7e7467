"""Regular forms of Tang verse (近体诗) by shape, shared by every stage.

A form is a number of lines of equal length; lines alternate ending in ，
and 。. ``prepare`` counts poems per form, ``constraints`` turns a form into
per-step masks, and ``evaluate`` checks generated poems against it.
"""

import dataclasses
import re

# The only punctuation kept in content; prepare maps the rest onto these.
PUNCTUATION = "，。？！"
# What closes a couplet (a regular poem's even line) or a ci's sentence; ， closes the line before it.
COUPLET_END = "。？！"
COUPLET_SPLIT = re.compile(f"(?<=[{COUPLET_END}])")
LINE_END = re.compile(r"(?<=[，。？！])")


@dataclasses.dataclass(frozen=True)
class Form:
    name: str
    chinese: str
    chars_per_line: int
    lines: int

    def line_end(self, index):
        """Punctuation closing line ``index`` (0-based): ， then 。 alternately."""
        return "，" if index % 2 == 0 else "。"


FORMS = {
    form.name: form
    for form in (
        Form("wujue", "五绝", 5, 4),
        Form("qijue", "七绝", 7, 4),
        Form("wulv", "五律", 5, 8),
        Form("qilv", "七律", 7, 8),
    )
}
FREE = "free"
FORM_NAMES = (FREE,) + tuple(FORMS)


def split_lines(content):
    """Split content after each ，。？！ (the last piece may lack punctuation)."""
    return [line for line in LINE_END.split(content) if line]


def couplet_repeats(content):
    """For each couplet of ``content`` (up to 。？！; a ci: each sentence), whether it says a character twice,
    a double of the character just before (萧萧) excepted: what ``processors.CoupletRepeat`` pulls against."""
    flags = []
    for couplet in COUPLET_SPLIT.split(content):
        chars = [c for c in couplet if c not in PUNCTUATION]
        if chars:
            flags.append(any(c in chars[: i - 1] for i, c in enumerate(chars) if i and c != chars[i - 1]))
    return flags


def line_end_repeats(content):
    """Does some line of ``content`` end on a character an earlier line ended on? What
    ``processors.LineEndRepeat`` pulls against: 3.8 % of held-out real poems do."""
    ends = [line.rstrip(PUNCTUATION)[-1:] for line in split_lines(content)]
    ends = [end for end in ends if end]
    return len(set(ends)) < len(ends)


def classify(content):
    """The form whose shape ``content`` has (ignoring tones and rhyme), or None.

    A poem has a form's shape when it has that many lines, every line has that
    many characters before its punctuation, and lines end ，。，。… exactly.
    """
    lines = split_lines(content)
    for form in FORMS.values():
        if len(lines) != form.lines:
            continue
        if all(
            len(line) == form.chars_per_line + 1 and line[-1] == form.line_end(i)
            for i, line in enumerate(lines)
        ):
            return form.name
    return None


def line_texts(content):
    """The lines of ``content`` without their closing punctuation."""
    return [line.rstrip(PUNCTUATION) for line in split_lines(content)]


def bigrams(content):
    """Neighbouring character pairs within each line of ``content`` (quality.distinct_2 counts them; ranking avoids repeating them)."""
    return [text[i : i + 2] for text in line_texts(content) for i in range(len(text) - 1)]
