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

from poetry_rnn.infra import files
from poetry_rnn.verse import prosody

TABLE = os.path.join(prosody.DATA, "title_carry.tsv")
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
