"""Which characters Tang poets double (叠字: 萧萧, 悠悠, 依依), and which they almost never do.

Doubling a character is a device of Tang verse, but of a few hundred
characters: 悠 is doubled in 689 of the training poems' lines, 年 (年年) 556
times, 萧 327. Read aloud, the shipped model's poems gave themselves away
with doubles no poet writes (源源, 多多, 西西): 0.10 doubles per poem of
characters doubled fewer than 20 times in the corpus, against 0.05-0.08 in
real poems. The decoder's ``Doubling`` processor pulls such a character
down right after itself; this module says which characters those are.

The counts are package data (``data/doubles.tsv``: for each character
doubled at least once inside a line of the chinese-poetry 全唐诗 training
split, how often, and its uses in lines; counts, no text), rebuilt with

    python -m poetry_rnn.prepare --source ../shared/corpus/quan_tang_shi --out data/poems.txt \
        --double_table poetry_rnn/data/doubles.tsv
"""

import collections
import functools
import os

import numpy as np

from poetry_rnn.infra import files
from poetry_rnn.verse import prosody

TABLE = os.path.join(prosody.DATA, "doubles.tsv")
COMMON_DOUBLE = 20  # a character doubled at least this often in the training lines is one poets double


def double_counts(poems):
    """({c: times c is written twice in a row inside a line}, {c: uses of c in lines}) over Han characters."""
    doubled, uses = collections.Counter(), collections.Counter()
    for text in (line for poem in poems for line in prosody.han_lines(poem.content)):
        uses.update(text)
        doubled.update(a for a, b in zip(text, text[1:]) if a == b)
    return doubled, uses


def write_table(path, poems):
    """Write the counts of ``poems`` (characters doubled at least once) as TSV, atomically."""
    doubled, uses = double_counts(poems)
    kept = sorted(doubled, key=lambda c: (-doubled[c], c))
    return files.write_count_table(path, "character\ttimes doubled in a line\tuses in lines (training split of "
                                   "data/poems.txt)", [(c, doubled[c], uses[c]) for c in kept])


@functools.lru_cache(maxsize=8)
def rare_vector(tokens, path=TABLE):
    """bool (V,): the tokens of a vocabulary (``Vocab.tokens``) that are Han characters poets seldom double
    (fewer than COMMON_DOUBLE times in the table, or not in it)."""
    counts = files.read_count_table(path)
    return np.array([prosody.is_han(t) and counts.get(t, (0, 0))[0] < COMMON_DOUBLE for t in tokens], bool)
