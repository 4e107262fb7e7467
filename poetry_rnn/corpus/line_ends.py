"""How readily each character ends a line: a pull for the one line end the model cannot see coming.

A character model learns a poem's line length from the lines before: once
the first line has ended after five characters, the next ones do too. The
first line has no such hint. The shipped model writes 五言 and 七言 poems
alike, so at the fifth character of a 五律 it still expects, in part, a
line of seven and draws a character for the middle of one; the form's mask
then ends the line there. In 300 五律 with rhyme, that character and the
comma after it cost 1.9 nats more under the corpus 5-gram than in real
poems, and the characters drawn there end lines in the corpus no more often
than they stand anywhere else (mean lift -0.01; real first lines +0.27).

So at the last free step of a regular poem's first line, when it is
shorter than seven characters (the longest regular line, whose end the
model expects), the decoder adds ``line_end_bonus`` x lift(c) to each
character's logit, where

    rate(c) = (ends(c) + PRIOR_USES * mean) / (uses(c) + PRIOR_USES)
    lift(c) = log(rate(c) / mean), clipped to [-LIFT_BOUND, LIFT_BOUND]

``uses(c)``: c's uses in the lines of the training split; ``ends(c)``: of
those, at the end of a line; ``mean``: the share of all uses that end a
line (about one in six). This is log P(c | line end) - log P(c), with a
prior that keeps a rare character that happened to end its few lines near 0.
Characters that end lines (晖, 扉, 稀, 时) are pulled up, those that seldom
do (不, 一, 岂, 且) down. Like the keyword pull it changes
which character is drawn, not the log-probabilities the ranking reads. The
counts are package data (``data/line_ends.tsv``, counts derived from the
chinese-poetry 全唐诗 training split, no text of it), rebuilt with

    python -m poetry_rnn.prepare --source ../shared/corpus/quan_tang_shi --out data/poems.txt \
        --title_table poetry_rnn/data/title_carry.tsv --line_end_table poetry_rnn/data/line_ends.tsv
"""

import collections
import functools
import math
import os

import numpy as np

from poetry_rnn.infra import files
from poetry_rnn.verse import prosody

TABLE = os.path.join(prosody.DATA, "line_ends.tsv")
MIN_USES = 5  # characters used fewer times in the training lines are left out (lift 0)
LIFT_BOUND = 3.0  # nats: 不 (21 of 24,311 uses end a line) would get -5.2
PRIOR_USES = 20  # pseudo-uses at the mean rate that every character starts with


def end_counts(poems):
    """({c: lines ending in c}, {c: uses of c in lines}) over the Han characters of ``poems``."""
    ends, uses = collections.Counter(), collections.Counter()
    for text in (line for poem in poems for line in prosody.han_lines(poem.content)):
        uses.update(text)
        if text:
            ends[text[-1]] += 1
    return ends, uses


def write_table(path, poems):
    """Write the counts of ``poems`` (characters used at least MIN_USES times) as TSV, atomically."""
    ends, uses = end_counts(poems)
    kept = sorted((c for c, n in uses.items() if n >= MIN_USES), key=lambda c: (-uses[c], c))
    return files.write_count_table(path, "character\tlines ending in it\tuses in lines (training split of data/poems.txt)",
                                   [(c, ends[c], uses[c]) for c in kept])


@functools.lru_cache(maxsize=None)
def read_table(path=TABLE):
    """{c: lift(c)} from a table ``write_table`` wrote (default: the package's)."""
    counts = files.read_count_table(path)
    mean = sum(e for e, _ in counts.values()) / sum(u for _, u in counts.values())
    lifts = {}
    for c, (ends, uses) in counts.items():
        rate = (ends + PRIOR_USES * mean) / (uses + PRIOR_USES)
        lifts[c] = max(-LIFT_BOUND, min(LIFT_BOUND, math.log(rate / mean)))
    return lifts


@functools.lru_cache(maxsize=8)
def lift_vector(tokens, path=TABLE):
    """float32 (V,): lift of each token of a vocabulary (``Vocab.tokens``); 0 for tokens not in the table."""
    lifts = read_table(path)
    return np.array([lifts.get(t, 0.0) for t in tokens], np.float32)
