"""The 平仄 patterns of 近体诗 (绝句, 律诗), and how well a poem's lines fit them.

A regulated poem's lines follow one of four tone patterns for its shape
(平起 or 仄起, the first line rhyming or not), derived here from the rules of
粘对 and rhyme rather than listed (:func:`tone_pattern`); :func:`relax`
keeps only the positions a tone level enforces. ``prosody`` says which tones
a character can take; this module says which tone each position of a poem
asks for. ``poem_request`` lays a request's pattern over its positions, the
validator checks a finished poem against it, and :func:`tone_agreement` and
:func:`best_tone_pattern` measure how far real or written lines agree, for
the evaluator.
"""

from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.verse.prosody import DEFAULT_SCHEME, EITHER, TONE_CLASSES, TONE_LEVELS, TONE_SYMBOL, P, Z, line_chars, tone_ok


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
# How well lines fit a pattern


def tone_agreement(lines, pattern, scheme=DEFAULT_SCHEME):
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
            if j < len(chars) and tone_ok(chars[j], required, scheme):
                agree += 1
    return agree, checked


def best_tone_pattern(lines, level="strict", scheme=DEFAULT_SCHEME):
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
        agree, checked = tone_agreement(lines, pattern, scheme)
        share = agree / checked if checked else 1.0
        if best is None or share > best[0]:
            best = (share, pattern, start, flr)
    return best
