"""How hard each character of a title pulls: how often Tang poets wrote it into the poem.

``write --title 咏梅`` pulls the title's characters into the poem (see
``constraints.plan``). They do not all carry the topic: of the training
poems whose title holds 梅, 46 % hold 梅 in the poem too, but 咏 (2 %),
首 and 赠 are almost never written. So each character gets a weight in
[0, 1], the share of its bonus it is given:

    rate(c)   = (carried(c) + PRIOR_TITLES * mean) / (titles(c) + PRIOR_TITLES)
    weight(c) = min(1, rate(c) / FULL_RATE)

``titles(c)``: training poems whose title holds c; ``carried(c)``: those
whose content holds it too; ``mean``: the carried share over all title
characters. The prior shrinks a character seen in few titles towards the
mean, and a character in no title gets the mean itself. The counts are
package data (``data/title_carry.tsv``, counts derived from the
chinese-poetry 全唐诗 training split, no text of it), rebuilt with

    python -m poetry_rnn.prepare --source ../shared/corpus/quan_tang_shi --out data/poems.txt \
        --title_table poetry_rnn/data/title_carry.tsv
"""

import collections
import functools
import os
import re
import typing

from poetry_rnn.infra import files
from poetry_rnn.verse import cipai, forms, prosody

TABLE = os.path.join(prosody.DATA, "title_carry.tsv")
SUBJECTS = os.path.join(prosody.DATA, "subjects.tsv")
MIN_TITLES = 5  # characters in fewer training titles are left to the mean
PRIOR_TITLES = 10  # pseudo-titles at the mean rate that every character starts with
FULL_RATE = 0.5  # a character carried this often or more gets the whole bonus


def carry_counts(poems):
    """({c: titles holding c}, {c: of those, poems whose content holds c}) over Han characters."""
    titles, carried = collections.Counter(), collections.Counter()
    for poem in poems:
        for c in set(poem.title):
            if prosody.is_han(c):
                titles[c] += 1
                carried[c] += c in poem.content
    return titles, carried


def write_table(path, poems):
    """Write the counts of ``poems`` (characters in at least MIN_TITLES titles) as TSV, atomically."""
    titles, carried = carry_counts(poems)
    kept = sorted((c for c, n in titles.items() if n >= MIN_TITLES), key=lambda c: (-titles[c], c))
    return files.write_count_table(path, "character\ttitles holding it\tof those, poems holding it (training split of data/poems.txt)",
                                   [(c, titles[c], carried[c]) for c in kept])


@functools.lru_cache(maxsize=None)
def read_table(path=TABLE):
    """({c: (titles, carried)}, mean carried share) from a table ``write_table`` wrote (default: the package's)."""
    counts = files.read_count_table(path)
    mean = sum(k for _, k in counts.values()) / sum(n for n, _ in counts.values())
    return counts, mean


def weight(c):
    """The share of --title_bonus that title character ``c`` is pulled with (module docstring)."""
    counts, mean = read_table()
    titles, carried = counts.get(c, (0, 0))
    rate = (carried + PRIOR_TITLES * mean) / (titles + PRIOR_TITLES)
    return min(1.0, rate / FULL_RATE)


# --------------------------------------------------------------------------
# Subjects: what an unprompted poem is written about, and how long it runs
#
# A poem written with no title and no keywords has no subject, and a
# thousand of them circle the model's favourite images. So ``write`` draws
# one of the real titles of the training split, by how many poems have it,
# and writes to it as to a title of the user's (poet.poem_requests). The
# titles are package data (``data/subjects.tsv``), cleaned of what says
# nothing of a subject: a series' numbering (帝京篇十首一 -> 帝京篇), a
# 乐府 category (杂曲歌辞杨柳枝 -> 杨柳枝);
# fragments (句), gathas (偈, 颂), lost titles (无题), a form's name (七言,
# 绝句) and a divination manual's chapters (兵要望江南占…第); and ci tunes
# (浣溪沙: a poem is not a ci). A title counts for at most SERIES_MOST poems,
# so a hundred-poem series (宫词) is one subject among many, not a tenth of them.
#
# Each title also keeps its poems' shapes: how many couplets (sentences
# closed by 。？！) and how many characters a line, so that a free poem is
# shaped as a real poem of its subject (``draw_shape``): left to the model,
# free poems ended 13 characters shorter than real ones and took five
# characters a line two times in three (real: one in two), and the realism
# judges read that first (issue 27).

SERIES_NUMBER = re.compile(r"([一二三四五六七八九十百]+首)?(其?[一二三四五六七八九十百]+)?$")
YUEFU_CATEGORY = re.compile("^(相和歌辞|杂曲歌辞|郊庙歌辞|横吹曲辞|鼓吹曲辞|琴曲歌辞|舞曲歌辞|清商曲辞|近代曲辞|新乐府辞|杂歌谣辞|燕射歌辞)")
NO_SUBJECT = ("句", "偈", "颂", "无题", "失题", "七言", "五言", "绝句", "杂诗", "兵要", "甲子", "道藏")  # inside a title
SUBJECT_CHARS = (2, 10)  # a subject title's length, after its numbering is cut
SERIES_MOST = 3


LINES = re.compile(f"[{forms.PUNCTUATION}；：、]")


class Subjects(typing.NamedTuple):
    """The subject table: titles, their cumulative draw weights, and each title's ((couplets, line chars), poems)."""

    titles: tuple
    cumulative: tuple
    shapes: tuple


def subject_title(title):
    """The subject a real title gives a new poem, or None: numbering cut, only Han titles of SUBJECT_CHARS."""
    subject = SERIES_NUMBER.sub("", YUEFU_CATEGORY.sub("", title)) or title
    low, high = SUBJECT_CHARS
    if not low <= len(subject) <= high or not all(prosody.is_han(c) for c in subject):
        return None
    if any(word in subject for word in NO_SUBJECT) or _names_a_tune(subject):
        return None
    return subject


def _names_a_tune(title):
    tunes = cipai.read_table()
    return cipai.tune_name(title) in tunes or any(title in p.aliases for p in tunes.values())


def poem_shape(content):
    """(couplets, line characters) of a poem's text: its sentences closed by 。？！ (``forms.COUPLET_END``), and
    the length its lines share (0: lines of several lengths)."""
    lengths = {len(line) for line in LINES.split(content) if line}
    return sum(content.count(mark) for mark in forms.COUPLET_END), lengths.pop() if len(lengths) == 1 else 0


def write_subjects(path, poems):
    """Write the subject titles of ``poems``, how many poems have each and their shapes, atomically."""
    shapes = collections.defaultdict(collections.Counter)
    for poem in poems:
        subject = subject_title(poem.title)
        if subject:
            shapes[subject][poem_shape(poem.content)] += 1
    rows = sorted(((title, min(sum(c.values()), SERIES_MOST), c) for title, c in shapes.items()),
                  key=lambda item: (-item[1], item[0]))
    lines = [f"# subject title\tpoems, at most {SERIES_MOST}\tcouplets x line characters (0: several):poems "
             "(training split of data/poems.txt, titles.subject_title)"]
    files.write_text(path, "\n".join(lines + [f"{title}\t{n}\t{_spell(c)}" for title, n, c in rows]) + "\n")
    return len(rows)


def _spell(shapes):
    return " ".join(f"{couplets}x{chars}:{n}" for (couplets, chars), n in sorted(shapes.items()))


def _read_shape(spelled):
    shape, n = spelled.split(":")
    return tuple(map(int, shape.split("x"))), int(n)


@functools.lru_cache(maxsize=None)
def read_subjects(path=SUBJECTS):
    """The :class:`Subjects` of a table ``write_subjects`` wrote (default: the package's)."""
    titles, cumulative, shapes, total = [], [], [], 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip() and not line.startswith("#"):
                title, n, spelled = line.rstrip("\n").split("\t")
                total += int(n)
                titles.append(title)
                cumulative.append(total)
                shapes.append(tuple(_read_shape(pair) for pair in spelled.split()))
    return Subjects(tuple(titles), tuple(cumulative), tuple(shapes))


def draw_subject(rng, path=SUBJECTS):
    """A subject title drawn by how often real poems have it (``rng``: a ``random.Random``)."""
    table = read_subjects(path)
    return rng.choices(table.titles, cum_weights=table.cumulative)[0]


def draw_shape(rng, title, path=SUBJECTS):
    """(couplets, line characters) of a free poem on ``title``: a real poem's of that title (the table's).

    A title the table lacks (the user's own, or none) takes the shape of a
    poem of a subject drawn as ``draw_subject`` draws it, so that many poems
    are shaped as real ones are.
    """
    index = _index(path)
    row = index[title] if title in index else index[draw_subject(rng, path)]
    shapes, poems = zip(*read_subjects(path).shapes[row])
    return rng.choices(shapes, weights=poems)[0]


@functools.lru_cache(maxsize=None)
def _index(path):
    return {title: k for k, title in enumerate(read_subjects(path).titles)}
