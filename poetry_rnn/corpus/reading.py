"""Reading poems.txt (``title:content`` per line) and lyric streams.

The reader is strict about encoding and lenient about content: a file that is
not UTF-8 is an error naming the file and line (training on mojibake is worse
than stopping), while a malformed line is skipped and counted, so one bad
line in 50,000 does not stop a run. The counts come back as ``ReadStats`` for
the summary the entry points print.
"""

import collections
import dataclasses

from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.infra.files import LINE_BREAKS

DEFAULT_MAX_LEN = 200  # content characters, as in the seed projects
COLONS = (":", "：")


@dataclasses.dataclass(frozen=True)
class CorpusPoem:
    """One line of a poems.txt: a poem as the corpus has it (``poet.Poem`` is one the model wrote)."""

    title: str
    content: str


@dataclasses.dataclass
class ReadStats:
    lines: int = 0
    kept: int = 0
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def summary(self):
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        return f"read {self.lines} lines, kept {self.kept} poems" + (f", skipped {reasons}" if reasons else "")


def parse_line(line, max_len=DEFAULT_MAX_LEN):
    """``(CorpusPoem, None)`` for a good line, ``(None, reason)`` for a skipped one.

    Splits on the first ASCII or full-width colon, whichever comes first, so a
    title may be empty but the content never contains the separator.
    """
    line = line.strip()
    if not line:
        return None, "empty line"
    if not LINE_BREAKS.isdisjoint(line):  # a \r or U+2028 inside: two lines glued together (or a CR-only file)
        return None, "line break inside the line"
    cut = min((i for i in (line.find(c) for c in COLONS) if i >= 0), default=-1)
    if cut < 0:
        return None, "no colon"
    title, content = line[:cut].strip(), line[cut + 1 :].strip()
    if not content:
        return None, "empty content"
    if any(c in content for c in COLONS):
        return None, "colon in content"
    if len(content) > max_len:
        return None, f"content over {max_len} characters"
    return CorpusPoem(title, content), None


def _utf8_lines(path):
    """Yield (line number, text) of a UTF-8 file; PoetryError naming the bad line."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise PoetryError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise PoetryError(f"expected a file, got a folder: {path}") from None
    except OSError as error:  # permission denied, a parent that is a file, ...
        raise PoetryError(f"cannot read {path}: {error.strerror or error}") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError:
                raise PoetryError(f"{path}:{number}: not valid UTF-8") from None


def read_poems(path, max_len=DEFAULT_MAX_LEN):
    """All good poems of a poems.txt file, and the counts of what was skipped."""
    stats = ReadStats()
    poems = []
    for _, line in _utf8_lines(path):
        stats.lines += 1
        poem, reason = parse_line(line.lstrip("\ufeff"), max_len)
        if poem is None:
            if reason != "empty line":
                stats.skipped[reason] += 1
            continue
        poems.append(poem)
    stats.kept = len(poems)
    if not poems:
        raise PoetryError(f"no usable poems in {path} ({stats.summary()})")
    return poems, stats


def read_stream(path):
    """A lyrics file as one text: non-empty lines joined with a space.

    The d2l lessons join lines with a space so the model learns where a lyric
    line ends without a reserved token; we do the same to compare with them.
    """
    lines = [line.strip() for _, line in _utf8_lines(path)]
    text = " ".join(line for line in lines if line)
    if not text:
        raise PoetryError(f"no text in {path}")
    return text
