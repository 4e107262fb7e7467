"""Where in the line are written poems stranger than real ones? 5-gram surprisal by line and place in it.

    python benchmarks/line_surprisal.py --form wulv POEMS.txt [MORE.txt ...]

Each file holds poems one per line, as ``realism.py --save`` writes them. For
every line of the form and every place in it (and its closing mark), the
mean surprisal in nats of the written poems' characters under realism's
5-gram (fitted on the training split), beside the same for the held-out real
poems of that form, as ``written / real``. A mean 5-gram ratio hides where
the strangeness is: in the written 五律 it was almost all at the rhymes,
which the decoder's mask forces whatever the line led to (docs/results.md).
"""

import argparse
import collections
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from realism import reference  # noqa: E402  (a sibling script: the same 5-gram and real poems)

from poetry_rnn.evaluation import ngram  # noqa: E402
from poetry_rnn.verse import forms  # noqa: E402

SHAPES = {"wujue": (4, 5), "qijue": (4, 7), "wulv": (8, 5), "qilv": (8, 7)}


def by_place(poems, lm):
    """{(line, place): [surprisal, ...]}, the closing mark of each line at place ``len(line)``."""
    found = collections.defaultdict(list)
    for poem in poems:
        text = ngram.BOS + poem
        line = place = 0
        for i in range(1, len(text)):
            found[(line, place)].append(-lm.logprob(text[max(0, i - lm.order + 1):i], text[i]))
            if text[i] in forms.PUNCTUATION:
                line, place = line + 1, 0
            else:
                place += 1
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--form", choices=sorted(SHAPES), default="wulv")
    parser.add_argument("poems", nargs="+")
    args = parser.parse_args()
    ref = reference("held_out")
    lines, length = SHAPES[args.form]
    real = by_place(ref.real[args.form], ref.lm)
    for path in args.poems:
        with open(path, encoding="utf-8") as handle:
            written = [p.strip() for p in handle if p.strip() and forms.classify(p.strip()) == args.form]
        found = by_place(written, ref.lm)
        print(f"\n{path}: {len(written)} poems, real {len(ref.real[args.form])}; written / real, nats\n")
        print("| line | " + " | ".join([str(p + 1) for p in range(length)] + ["mark"]) + " |")
        print("|---" * (length + 2) + "|")
        for line in range(lines):
            print(f"| {line + 1} | " + " | ".join(f"{np.mean(found[(line, p)]):.2f} / {np.mean(real[(line, p)]):.2f}"
                                             for p in range(length + 1)) + " |")


if __name__ == "__main__":
    main()
