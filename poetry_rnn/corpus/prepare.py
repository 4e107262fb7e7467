"""Corpus JSON -> ``data/poems.txt`` (Tang poems), ``data/ci.txt`` (Song ci) or ``data/lyrics.txt`` (lyrics).

Every later stage reads one poem per line, ``title:content``, in simplified
characters, with content made only of Han characters and ，。？！. This module
(the files, the summary) and ``cleaning`` (the rules that clean one poem)
are the one place that knows what the raw chinese-poetry files
look like and how messy they are, so training never has to.

    python -m poetry_rnn.prepare --source ../shared/corpus/quan_tang_shi --out data/poems.txt
    python -m poetry_rnn.prepare --source https://.../chinese-poetry/archive/master.zip --out data/poems.txt
    python -m poetry_rnn.prepare --lyrics ../shared/corpus/jaychou_lyrics/jaychou_lyrics.txt.zip --out data/lyrics.txt
    python -m poetry_rnn.prepare --source ../shared/corpus/quan_tang_shi --out data/poems.txt \
        --title_table poetry_rnn/data/title_carry.tsv \
        --line_end_table poetry_rnn/data/line_ends.tsv  # also the package's tables (training/tables.py)
    python -m poetry_rnn.prepare --ci ../shared/corpus/song_ci --out data/ci.txt \
        --cipai_table poetry_rnn/data/cipai.json  # the Song ci, and the tune patterns read off them

``--ci`` is the same kind of source holding ``ci.song.N.json`` (the
repository's 宋词 folder); each ci is written ``tune:content``, the tune
(``rhythmic``) as its title, cleaned by the same rules as a Tang poem. A ci
whose tune is lost (失调名) is left out: ci.txt pairs each ci with the tune
it was written to, and 失调名 names no tune.

``--source`` is a folder of ``poet.tang.N.json``, a zip of the chinese-poetry
repository (any member named ``poet.tang.N.json``), or an http(s) URL of such a
zip, downloaded once into ``--cache_dir``. Files are read in order of their
number N, poems in file order, so the output is byte-identical run after run
and "keep the first duplicate" means the same poem every time.

A JSON file that does not parse is named in the summary and skipped, so one
damaged file does not lose the other 57; the run still writes the poems it
could read, then exits with status 2 and a one-line error naming the skipped
files, so a script never mistakes a partial corpus for a whole one.
"""

import collections
import dataclasses
import json
import math
import os
import re
import zipfile

from poetry_rnn.corpus import cleaning, reading
from poetry_rnn.infra import fetch, files
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.verse import cipai, forms

DEFAULT_MAX_LEN = reading.DEFAULT_MAX_LEN


@dataclasses.dataclass(frozen=True)
class Collection:
    """One collection of the chinese-poetry repository: how its files are named, its folder, its title field.

    The Tang poems and the Song ci are read by the same code (folder, zip or
    URL; files in order of N); only these three things differ.
    """

    stem: str       # the files are STEM.N.json
    folder: str     # the repository folder holding them, named in the error that finds none
    title_key: str  # the entry's field that becomes the line's title

    @property
    def files(self):
        """The file names as the errors write them (poet.tang.*.json)."""
        return f"{self.stem}.*.json"

    @property
    def pattern(self):
        """The regular expression that finds a file of the collection and its number N, in a folder or a zip."""
        return re.compile(rf"(?:^|/){re.escape(self.stem)}\.(\d+)\.json$")


TANG = Collection("poet.tang", "全唐诗", "title")
SONG_CI = Collection("ci.song", "宋词", "rhythmic")
LOST_TUNE = "失调名"  # the editors' mark for a ci whose tune is lost

FORM_LABELS = {name: f"{form.chinese} {name}" for name, form in forms.FORMS.items()}
# The command that builds each kind of training text (for errors that find it missing).
BUILD_COMMANDS = {"poems": "python -m poetry_rnn.prepare --source path/to/chinese-poetry/全唐诗 --out {out}",
                  "lyrics": "python -m poetry_rnn.prepare --lyrics path/to/jaychou_lyrics.txt.zip --out {out}"}


@dataclasses.dataclass
class PrepareSummary:
    """What ``prepare_poems`` read, kept and dropped, and the shape of the result."""

    NOUN = "poems"  # what an entry is called in the report
    DROP_LABELS = cleaning.DROPS

    source: str
    out: str
    max_len: int
    files_read: int = 0
    skipped_files: list = dataclasses.field(default_factory=list)  # (name, reason)
    poems_read: int = 0
    kept: int = 0
    changes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    drops: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    characters: int = 0
    vocabulary: int = 0
    lengths: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    shapes: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # form name -> poems

    def histogram(self, bins=10, width=40):
        """Text bars of content length (characters incl. punctuation), ``bins`` equal ranges up to max_len."""
        step = max(1, math.ceil(self.max_len / bins))
        counts = collections.Counter()
        for length, n in self.lengths.items():
            counts[(length - 1) // step] += n
        top = max(counts.values(), default=0)
        rows = []
        for b in range(math.ceil(self.max_len / step)):
            n = counts[b]
            bar = "#" * (round(width * n / top) if top else 0)
            rows.append(f"  {b * step + 1:>4}-{(b + 1) * step:<4} {bar:<{width}} {n:,}")
        return "\n".join(rows)

    def count_shape(self, poem):
        """Count a kept poem under its form (五绝/七绝/五律/七律), if it has one."""
        shape = forms.classify(poem.content)
        if shape:
            self.shapes[shape] += 1

    def shape_lines(self):
        """The report's last section: the kept poems by form."""
        return [
            "forms by shape:",
            *(f"  {label}: {self.shapes[name]:,}" for name, label in FORM_LABELS.items()),
            f"  other: {self.kept - sum(self.shapes.values()):,}",
        ]

    def format(self):
        """The multi-line report printed after a run."""
        noun = self.NOUN
        lines = [
            f"source: {self.source}",
            f"files read: {self.files_read}, skipped: {len(self.skipped_files)}",
            *(f"  skipped {name}: {reason}" for name, reason in self.skipped_files),
            f"{noun} read: {self.poems_read:,}",
            f"{noun} kept: {self.kept:,} -> {self.out}",
            f"changed ({noun} a rule edited, kept or not):",
            *(f"  {label}: {self.changes[rule]:,}" for rule, label in cleaning.CHANGES.items()),
            f"dropped ({noun}, first rule that applies):",
            *(f"  {label}: {self.drops[rule]:,}" for rule, label in self.DROP_LABELS.items()),
            f"characters: {self.characters:,} (content, incl. punctuation)",
            f"vocabulary: {self.vocabulary:,} distinct characters (content)",
            "length histogram (content characters):",
            self.histogram(),
            *self.shape_lines(),
        ]
        return "\n".join(lines)


@dataclasses.dataclass
class CiSummary(PrepareSummary):
    """What ``prepare_ci`` read, kept and dropped: the poems' report, with ci counted by tune instead of form."""

    NOUN = "ci"
    # --forms is for Tang poems; a lost tune is dropped before a duplicate is looked for.
    DROP_LABELS = {**{rule: label for rule, label in cleaning.DROPS.items() if rule not in ("not_regular", "duplicate")},
                   "lost_tune": f"tune lost ({LOST_TUNE})", "duplicate": cleaning.DROPS["duplicate"]}
    TUNES_SHOWN = 12

    def count_shape(self, poem):
        """Count a kept ci under its tune (an alias such as 酹江月・念奴娇 under 念奴娇)."""
        self.shapes[cipai.tune_name(poem.title)] += 1

    def shape_lines(self):
        """The report's last section: how many tunes, and the commonest."""
        common = sorted(self.shapes.items(), key=lambda item: (-item[1], item[0]))[: self.TUNES_SHOWN]
        return [f"tunes: {len(self.shapes):,}, commonest:", *(f"  {tune}: {n:,}" for tune, n in common)]


def _numbered(names, collection=TANG):
    """The names matching STEM.N.json (poet.tang.N.json), sorted by N (then name): the deterministic order."""
    pattern = collection.pattern
    found = [(int(m.group(1)), name) for name in names if (m := pattern.search(name))]
    return [name for _, name in sorted(found)]


def _corpus_files(source, cache_dir, sha256, collection=TANG):
    """Yield (name, raw bytes) of each of the collection's STEM.N.json in ``source``, in order of N."""
    if re.match(r"https?://", source):
        source = fetch.download(source, cache_dir, sha256)
        sha256 = None  # download checked it
    elif not os.path.exists(source):
        raise PoetryError(f"source not found: {source}")
    if os.path.isdir(source):
        if sha256:
            raise PoetryError(f"--sha256 checks a zip, but {source} is a folder")
        names = _numbered(os.listdir(source), collection)
        if not names:
            raise PoetryError(
                f"no {collection.files} in {source} (for a chinese-poetry checkout, give its {collection.folder} folder)"
            )
        for name in names:
            with open(os.path.join(source, name), "rb") as handle:
                yield name, handle.read()
        return
    sha256 = fetch.check_sha256(sha256)
    if sha256 and (actual := fetch.file_sha256(source)) != sha256:
        raise PoetryError(f"{source}: SHA-256 is {actual}, expected {sha256}")
    try:
        with zipfile.ZipFile(source) as archive:
            names = _numbered(archive.namelist(), collection)
            if not names:
                raise PoetryError(f"no {collection.files} in the zip {source}")
            for name in names:
                yield name, archive.read(name)
    except zipfile.BadZipFile as error:
        raise PoetryError(f"{source} is not a folder of {collection.files} or a valid zip: {error}") from error


def _entries(raw):
    """The list of poem entries in one file's bytes; ValueError says why not."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error})") from error
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 ({error.reason} at byte {error.start})") from error
    if not isinstance(data, list):
        raise ValueError(f"expected a JSON array of poems, found {type(data).__name__}")
    return data


def _title_and_paragraphs(entry, title_key="title"):
    """(title, paragraphs) of a well-formed entry, or None for a malformed one."""
    if not isinstance(entry, dict):
        return None
    paragraphs = entry.get("paragraphs")
    title = entry.get(title_key, "")
    if not isinstance(paragraphs, list) or not all(isinstance(p, str) for p in paragraphs):
        return None
    return (title if isinstance(title, str) else ""), paragraphs


def prepare_poems(source, out, max_len=DEFAULT_MAX_LEN, forms_only=False, cache_dir=None, sha256=None):
    """Read the Tang poems at ``source``, clean them and atomically write ``out``.

    ``source``: folder, zip or http(s) URL (see the module docstring).
    ``cache_dir``: where URL downloads are kept (default ~/.cache/poetry_rnn).
    ``sha256``: optional expected SHA-256 of the zip. Raises PoetryError for a
    source that cannot be read at all, or when no poem survives (``out`` is
    then left as it was). Files that do not parse are listed in
    ``summary.skipped_files``; deciding what that means is the caller's job.
    """
    if max_len < 1:
        raise PoetryError(f"--max_len must be at least 1, got {max_len}")
    summary = PrepareSummary(source=source, out=os.fspath(out), max_len=max_len)
    named_files = _corpus_files(source, cache_dir, sha256, TANG)
    kept = _clean_entries(named_files, summary, TANG,
                          lambda title, paragraphs: cleaning.clean_poem(title, paragraphs, max_len, forms_only))
    return _write_kept(kept, summary)


def _clean_ci(title, paragraphs, max_len):
    """``cleaning.clean_poem`` for a ci (its tune as the title), dropped as ``lost_tune`` when the tune is lost."""
    poem = cleaning.clean_poem(title, paragraphs, max_len)
    if not poem.dropped and poem.title == LOST_TUNE:
        return dataclasses.replace(poem, dropped="lost_tune")
    return poem


def prepare_ci(source, out, max_len=DEFAULT_MAX_LEN, cache_dir=None, sha256=None):
    """Read the Song ci at ``source``, clean them as the Tang poems are and atomically write ``out`` (tune:content).

    ``source`` is a folder of ``ci.song.N.json`` (the repository's 宋词
    folder), a zip of the repository, or its URL, read as ``prepare_poems``
    reads the Tang poems; the errors are the same. The tune (``rhythmic``)
    is each line's title; ci whose tune is lost (失调名) are dropped.
    """
    if max_len < 1:
        raise PoetryError(f"--max_len must be at least 1, got {max_len}")
    summary = CiSummary(source=source, out=os.fspath(out), max_len=max_len)
    named_files = _corpus_files(source, cache_dir, sha256, SONG_CI)
    kept = _clean_entries(named_files, summary, SONG_CI, lambda title, paragraphs: _clean_ci(title, paragraphs, max_len))
    return _write_kept(kept, summary)


def _clean_entries(named_files, summary, collection, clean):
    """Clean every entry of the (name, bytes) files in order; count into ``summary``; return the kept CleanPoems.

    ``clean(title, paragraphs)`` is the collection's rule for one entry. A
    file that does not parse is listed in ``summary.skipped_files`` and the
    walk goes on; of two entries with the same content the first is kept.
    """
    kept, seen = [], set()
    for name, raw in named_files:
        try:
            entries = _entries(raw)
        except ValueError as error:
            summary.skipped_files.append((name, str(error)))
            continue
        summary.files_read += 1
        for entry in entries:
            summary.poems_read += 1
            parsed = _title_and_paragraphs(entry, collection.title_key)
            if parsed is None:
                summary.drops["malformed"] += 1
                continue
            poem = clean(*parsed)
            summary.changes.update(poem.changes)
            dropped = poem.dropped or ("duplicate" if poem.content in seen else None)
            if dropped:
                summary.drops[dropped] += 1
                continue
            seen.add(poem.content)
            kept.append(poem)
    return kept


def _write_kept(kept, summary):
    """Count the kept poems' lengths, shapes and characters into ``summary``, write them as title:content, return it.

    With nothing kept, PoetryError and the output file left as it was.
    """
    if not kept:
        raise PoetryError(f"no {summary.NOUN} kept from {summary.source} ({summary.poems_read} read); "
                          f"{summary.out} left unchanged")
    for poem in kept:
        summary.lengths[len(poem.content)] += 1
        summary.count_shape(poem)
    summary.kept = len(kept)
    summary.characters = sum(length * n for length, n in summary.lengths.items())
    summary.vocabulary = len(set().union(*(poem.content for poem in kept)))
    _write_lines(summary.out, [f"{poem.title}:{poem.content}\n" for poem in kept])
    return summary


def _write_lines(out, lines):
    """Atomically replace ``out`` with ``lines``; an OS error becomes a one-line PoetryError."""
    try:
        with files.atomic_write(out) as handle:
            for line in lines:
                handle.write(line)
    except OSError as error:
        raise PoetryError(f"cannot write {out}: {error.strerror or error}") from error


@dataclasses.dataclass
class LyricsSummary:
    """What ``prepare_lyrics`` wrote: lines and characters, for the printed report."""

    source: str
    out: str
    lines: int
    characters: int
    vocabulary: int

    def format(self):
        return "\n".join(
            [
                f"source: {self.source}",
                f"lyric lines: {self.lines:,} -> {self.out}",
                f"characters: {self.characters:,}",
                f"vocabulary: {self.vocabulary:,} distinct characters",
            ]
        )


def _lyrics_bytes(source):
    """The text file's bytes: the file itself, or the single .txt inside a zip."""
    if not os.path.isfile(source):
        raise PoetryError(f"lyrics file not found: {source}")
    if not zipfile.is_zipfile(source):
        with open(source, "rb") as handle:
            return handle.read()
    try:
        with zipfile.ZipFile(source) as archive:
            texts = [name for name in archive.namelist() if name.endswith(".txt")]
            if len(texts) != 1:
                raise PoetryError(f"{source} should hold one .txt file, found {len(texts)}")
            return archive.read(texts[0])
    except zipfile.BadZipFile as error:
        raise PoetryError(f"{source} is not a valid zip: {error}") from error


def prepare_lyrics(source, out):
    """Write the lyrics at ``source`` (a .txt, or a zip holding one) to ``out``, one line per lyric line.

    Lines are stripped at both ends and empty ones dropped; characters are
    kept as they are, since lyrics are modern text with no notes to clean.
    """
    try:
        text = _lyrics_bytes(source).decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise PoetryError(f"{source} is not UTF-8 text ({error.reason} at byte {error.start})") from error
    lyric_lines = [line.strip() for line in text.splitlines()]
    lyric_lines = [line for line in lyric_lines if line]
    if not lyric_lines:
        raise PoetryError(f"no lyric lines in {source}; {out} left unchanged")
    _write_lines(out, [f"{line}\n" for line in lyric_lines])
    return LyricsSummary(
        source=source,
        out=os.fspath(out),
        lines=len(lyric_lines),
        characters=sum(map(len, lyric_lines)),
        vocabulary=len(set().union(*lyric_lines)),
    )


def prepare(source=None, lyrics=None, out=None, max_len=DEFAULT_MAX_LEN, forms_only=False, cache_dir=None,
            sha256=None, tables=None, ci=None):
    """What ``python -m poetry_rnn.prepare`` does: write one corpus file and print its summary.

    Exactly one of ``source`` (Tang poems, see ``prepare_poems``), ``ci`` (Song ci, see ``prepare_ci``) or
    ``lyrics`` (see ``prepare_lyrics``); ``out`` defaults to data/poems.txt, data/ci.txt or data/lyrics.txt.
    ``tables``, when given, is called with the written file after the summary: the entry point passes
    ``training.tables.write_training_tables`` for ``--title_table``/``--line_end_table`` and
    ``training.tables.write_cipai_table`` for ``--cipai_table`` (which poems are training's is a question
    for training, a floor above this one). Poems read from a source that had unreadable files are written,
    then refused with a one-line PoetryError naming the files.
    """
    if sum(given is not None for given in (source, ci, lyrics)) != 1:
        raise PoetryError("give exactly one of --source (Tang poems), --ci (Song ci) or --lyrics (lyrics text or zip)")
    if lyrics is not None:
        print(prepare_lyrics(lyrics, out or os.path.join("data", "lyrics.txt")).format())
        return
    if ci is not None:
        if forms_only:
            raise PoetryError("--forms keeps Tang poem shapes (--source); a ci has its tune's shape")
        summary = prepare_ci(ci, out or os.path.join("data", "ci.txt"), max_len=max_len, cache_dir=cache_dir,
                             sha256=sha256)
    else:
        summary = prepare_poems(source, out or os.path.join("data", "poems.txt"), max_len=max_len,
                                forms_only=forms_only, cache_dir=cache_dir, sha256=sha256)
    print(summary.format())
    if tables is not None:
        tables(summary.out)
    if summary.skipped_files:
        names = ", ".join(name for name, _ in summary.skipped_files)
        raise PoetryError(
            f"{len(summary.skipped_files)} file(s) skipped ({names}); {summary.out} was written without them"
        )
