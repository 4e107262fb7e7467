"""A vocabulary's prosody as numpy arrays, for the decoder's masks.

``prosody`` answers per character (its tones, its rhyme groups, the
neighbours that change how it is heard); the masks need the same answers
for every token of a model's vocabulary at once. :class:`VocabProsody`
builds those arrays once per vocabulary and rhyme scheme, and
``constraints`` turns them into the masks of a ``DecodePlan``. Building
them reads pypinyin's dictionaries for every token, about 3 s, so they are
also kept on disk (``files.CACHE_DIR``), named by everything they depend
on: a fresh ``write`` loads them in milliseconds. It is apart
from ``prosody`` so that the per-character rules stay free of numpy and of
vocabularies, and the array layout the masks depend on is in one place.
"""

import collections
import dataclasses
import functools
import hashlib
import importlib.metadata
import os
import typing
import zipfile

import numpy as np

from poetry_rnn.infra import files
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.verse import cipai, prosody
from poetry_rnn.verse.prosody import (
    DEFAULT_SCHEME, PING, ZE, Reading, RhymeScheme, char_readings, char_rhymes, char_tones, default_reading, get_scheme,
    heard_class, is_han, phrase_pairs, remember_readings, shared_rhymes,
)


@dataclasses.dataclass(frozen=True, eq=False)
class VocabProsody:
    """Per-token prosody of a vocabulary for the masks (arrays indexed by token id).

    han:           (V,) bool, the token is one Han character (reserved ids False)
    ping, ze:      (V,) bool, a free character that is heard 平 / 仄 (xinyun:
                   its default reading, see ``prosody``'s module doc; pingshui: the table)
    group_members: (G, V) bool, free characters that end a rhyme of group g
                   (heard 平 in g; pingshui: a 平 entry in g, 邻韵 if loose)
    pair_tokens:   (V, K) int32, for a previous token x the tokens y whose
                   pair xy is in ``prosody.phrase_pairs`` (padded with V)
    pair_kinds:    (V, K) int32, the pair's kinds (CHANGES_FIRST/SECOND), 0 in padding
    unknown:       Han tokens with no tone class under the scheme's character
                   readings (pypinyin has no reading, or the table no entry), in id order
    readings:      (V,) str, each token's ``prosody.char_readings`` as
                   "initial,final,tone" joined by spaces: what ranking and
                   checking a draft ask of its characters, kept with the rest
                   so that a fresh process need not ask pypinyin's dictionaries
    """

    scheme: RhymeScheme
    han: np.ndarray
    ping: np.ndarray
    ze: np.ndarray
    group_members: np.ndarray
    pair_tokens: np.ndarray
    pair_kinds: np.ndarray
    unknown: tuple
    readings: np.ndarray

    @classmethod
    def build(cls, vocab, scheme=DEFAULT_SCHEME):
        scheme = get_scheme(scheme)
        key = (vocab.fingerprint, scheme.name)
        if key not in _CACHE:
            path = _disk_path(vocab, scheme)
            _CACHE[key] = _frozen(_read(path, scheme) or _written(path, cls._compute(vocab, scheme)))
            remember_readings({token: _decoded(text) for token, text in zip(vocab.tokens, _CACHE[key].readings)})
        return _CACHE[key]

    @classmethod
    def _compute(cls, vocab, scheme):
        tokens = vocab.tokens
        n, g = len(tokens), len(scheme.groups)
        han = np.zeros(n, bool)
        ping = np.zeros(n, bool)
        ze = np.zeros(n, bool)
        members = np.zeros((g, n), bool)
        unknown = []
        reserved = len(tokens) - len(vocab.chars)  # PAD UNK BOS EOS SEP
        for i, token in enumerate(tokens):
            if i < reserved or not is_han(token):
                continue
            han[i] = True
            if not char_tones(token, scheme):
                unknown.append(token)
            if scheme.table is not None:
                tones = char_tones(token, scheme)
                ping[i], ze[i] = PING in tones, ZE in tones
                members[sorted(char_rhymes(token, PING, scheme)), i] = True
                continue
            heard = heard_class(default_reading(token))
            if heard is None:
                continue
            ping[i], ze[i] = heard[0] == PING, heard[0] == ZE
            if heard[0] == PING and heard[1] is not None:
                members[heard[1], i] = True
        pair_tokens, pair_kinds = _pair_table(vocab, n) if scheme.table is None else _pair_table(None, n)
        readings = np.array([_encoded(char_readings(token)) for token in tokens])
        return cls(scheme, han, ping, ze, members, pair_tokens, pair_kinds, tuple(unknown), readings)

    def arrays(self):
        """Every field but the scheme, as numpy arrays (what the disk cache holds)."""
        return {f.name: np.asarray(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "scheme"}


@dataclasses.dataclass(frozen=True, eq=False)
class RhymeBook:
    """The groups a poem's rhyme steps draw from, over a vocabulary: a scheme's 平 rhymes, or a ci's book.

    name:    key of its block in a plan's group table
    members: (G, V) bool, tokens that can end a rhyme of group g
    shared:  characters -> the groups they all rhyme in (for fixed rhyming characters)
    """

    name: str
    members: np.ndarray
    shared: typing.Callable

    @classmethod
    def of_scheme(cls, vp):
        """A regular poem's: its scheme's groups, 平 only."""
        return cls(vp.scheme.name, vp.group_members, lambda chars: shared_rhymes(chars, vp.scheme))

    @classmethod
    def of_ci(cls, vocab, book):
        """A ci's: ``cipai.rhyme_groups`` of every Han token, in any tone (the step's tone is its own mask)."""
        key = (vocab.fingerprint, "ci:" + book)
        if key not in _CACHE:
            members = np.zeros((len(cipai.group_names(book)), len(vocab.tokens)), bool)
            reserved = len(vocab.tokens) - len(vocab.chars)
            for i, token in enumerate(vocab.tokens[reserved:], reserved):
                if is_han(token):
                    members[sorted(cipai.rhyme_groups(token, book)), i] = True
            members.setflags(write=False)
            _CACHE[key] = cls(key[1], members, lambda chars: cipai.shared_groups(chars, book))
        return _CACHE[key]


def _pair_table(vocab, n):
    """phrase_pairs over a vocabulary as padded (n, K) token and kind arrays (K >= 1)."""
    rows = collections.defaultdict(list)
    for (x, y), kind in (phrase_pairs().items() if vocab is not None else ()):
        if x in vocab and y in vocab:
            rows[vocab.id(x)].append((vocab.id(y), kind))
    width = max((len(r) for r in rows.values()), default=1)
    tokens = np.full((n, width), n, np.int32)
    kinds = np.zeros((n, width), np.int32)
    for x, row in rows.items():
        tokens[x, : len(row)] = [y for y, _ in row]
        kinds[x, : len(row)] = [k for _, k in row]
    return tokens, kinds


_CACHE = {}


@functools.lru_cache(maxsize=1)
def _sources_digest():
    """What the arrays are derived from besides the vocabulary: our rules and tables, pypinyin's and OpenCC's data."""
    digest = hashlib.sha256(" ".join(f"{name} {importlib.metadata.version(name)}"
                                     for name in ("pypinyin", "opencc")).encode())
    for path in (prosody.__file__, __file__, os.path.join(prosody.DATA, "pingshui_yun.tsv")):
        with open(path, "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()


def _disk_path(vocab, scheme):
    name = hashlib.sha256(f"{_sources_digest()} {vocab.fingerprint} {scheme.name}".encode()).hexdigest()[:24]
    return os.path.join(files.CACHE_DIR, "prosody", f"{name}.npz")


def _read(path, scheme):
    """The VocabProsody cached at ``path``, or None when there is none (or it cannot be read)."""
    try:
        with np.load(path) as stored:
            fields = {name: stored[name] for name in stored.files}
        fields["unknown"] = tuple(str(c) for c in fields["unknown"])
        return VocabProsody(scheme, **fields)
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile):
        return None


def _written(path, built):
    """``built``, after an attempt to keep it at ``path``: a cache that cannot be written costs only time."""
    try:
        with files.atomic_write(path, "wb") as handle:
            np.savez(handle, **built.arrays())
    except (OSError, PoetryError):
        pass
    return built


def _encoded(readings):
    return " ".join(f"{r.initial},{r.final},{r.tone}" for r in readings)


def _decoded(text):
    return tuple(Reading(initial, final, int(tone)) for initial, final, tone in (r.split(",") for r in text.split()))


def _frozen(vp):
    for value in vars(vp).values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
    return vp
