"""Characters <-> integer ids, with reserved ids and a readable file format.

Ids 0..4 are reserved: PAD (padding, never predicted), UNK (characters seen
fewer than ``min_count`` times), BOS and EOS (poem boundaries), SEP (ends
each field of a conditioned model's prompt; see :func:`prompt_fields`). Then characters follow by
descending frequency, ties broken by code point, so the same corpus always
gives the same ids.

The file (``vocab.txt``) is one token per line, line number = id, so it can
be read in any editor; a space is a legitimate token (lyrics streams use it
to join lines), and no token may contain a line break (newline, carriage
return, U+2028 and the like are never kept, so they read as UNK).
"""

import collections
import hashlib

from poetry_rnn.infra import files
from poetry_rnn.infra.errors import PoetryError

PAD, UNK, BOS, EOS, SEP = 0, 1, 2, 3, 4
RESERVED = ("<pad>", "<unk>", "<bos>", "<eos>", "<sep>")
# Line breaks (files.LINE_BREAKS) are never tokens, or vocab.txt would not read back; they become UNK.
LINE_BREAKS = files.LINE_BREAKS


def prompt_fields(condition, title="", keywords=""):
    """The prompt's fields before the content, as ``[(text, what), ...]``; each is followed by SEP.

    The one layout that training (``dataset.encode_poems``) and decoding
    (``constraints.plan``) share:

    * none:     BOS content EOS
    * title:    BOS title SEP content EOS
    * keywords: BOS title SEP keywords SEP content EOS; either field may be
      empty, so one model writes to a title, to keywords or to both; with
      neither it is BOS content EOS, as an unconditioned model reads it (so a
      model fine-tuned to keywords from an unconditioned one keeps its free
      poems' input unchanged).
    """
    if condition == "title":
        return [(title, "title")]
    if condition == "keywords" and (title or keywords):
        return [(title, "title"), (keywords, "keywords")]
    return []


class Vocab:
    def __init__(self, tokens):
        tokens = list(tokens)
        if tuple(tokens[: len(RESERVED)]) != RESERVED:
            raise PoetryError(f"vocabulary must start with the reserved tokens {' '.join(RESERVED)}")
        broken = [token for token in tokens if LINE_BREAKS.intersection(token)]
        if broken:
            raise PoetryError(f"vocabulary token {broken[0]!r} holds a line break; vocab.txt is one token per line")
        self.tokens = tokens
        self.index = {token: i for i, token in enumerate(tokens)}
        if len(self.index) != len(tokens):
            raise PoetryError("vocabulary lists a token twice")

    @classmethod
    def build(cls, texts, min_count=2):
        """Count characters over ``texts``; keep those seen ``min_count`` times or more."""
        counts = collections.Counter()
        for text in texts:
            counts.update(text)
        kept = sorted((c for c, n in counts.items() if n >= min_count and c not in LINE_BREAKS), key=lambda c: (-counts[c], c))
        return cls(RESERVED + tuple(kept))

    def __len__(self):
        return len(self.tokens)

    def __contains__(self, char):
        return self.index.get(char, UNK) >= len(RESERVED)

    def __eq__(self, other):
        return isinstance(other, Vocab) and self.tokens == other.tokens

    @property
    def chars(self):
        """The ordinary characters, in id order (id = position + len(RESERVED))."""
        return self.tokens[len(RESERVED):]

    def id(self, char):
        return self.index.get(char, UNK)

    def encode(self, text):
        return [self.index.get(c, UNK) for c in text]

    def decode(self, ids):
        """Text of ``ids``, stopping at EOS and dropping PAD/BOS/SEP; UNK shows as □."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i == UNK:
                out.append("□")
            elif i >= len(RESERVED):
                out.append(self.tokens[i])
        return "".join(out)

    @property
    def fingerprint(self):
        """A short hash of the token list: two vocabularies are the same iff it matches."""
        return hashlib.sha256("\n".join(self.tokens).encode("utf-8")).hexdigest()[:16]

    def save(self, path):
        files.write_text(path, "".join(token + "\n" for token in self.tokens))

    @classmethod
    def load(cls, path):
        try:
            with open(path, encoding="utf-8", newline="\n") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise PoetryError(f"vocabulary file not found: {path}") from None
        except UnicodeDecodeError:
            raise PoetryError(f"vocabulary file is not UTF-8: {path}") from None
        except OSError as error:
            raise PoetryError(f"cannot read vocabulary file {path}: {error.strerror or error}") from None
        if not text.endswith("\n"):
            raise PoetryError(f"vocabulary file is truncated: {path}")
        return cls(text[:-1].split("\n"))
