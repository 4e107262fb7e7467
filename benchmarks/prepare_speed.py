"""How long ``prepare_poems`` takes on the whole Tang corpus (budget: 15 s on 2 cores).

    python benchmarks/prepare_speed.py                      # ../shared/corpus/quan_tang_shi
    POETRY_RNN_CORPUS=/data/corpus python benchmarks/prepare_speed.py
    python benchmarks/prepare_speed.py --source path/to/chinese-poetry-master.zip --repeat 3

The output goes to a temporary folder, so running the benchmark never
touches data/poems.txt. The first repeat includes building the OpenCC
converter (a few milliseconds); the best and the median are printed.
"""

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from poetry_rnn.corpus import prepare  # noqa: E402  (needs the repo root on sys.path)
from poetry_rnn.infra.errors import PoetryError  # noqa: E402

BUDGET_S = 15.0


def default_source():
    corpus = os.environ.get("POETRY_RNN_CORPUS") or REPO.parent / "shared" / "corpus"
    return str(pathlib.Path(corpus) / "quan_tang_shi")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=default_source(), help="folder, zip or URL (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=1, help="runs to time (default: %(default)s)")
    args = parser.parse_args()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(max(1, args.repeat)):
            start = time.perf_counter()
            try:
                summary = prepare.prepare_poems(args.source, os.path.join(tmp, "poems.txt"))
            except PoetryError as error:
                sys.exit(f"error: {error}")
            times.append(time.perf_counter() - start)
    best, median = min(times), statistics.median(times)
    print(f"source: {args.source}")
    print(f"files: {summary.files_read}, poems read: {summary.poems_read:,}, kept: {summary.kept:,}")
    print(f"time: best {best:.2f} s, median {median:.2f} s over {len(times)} run(s) (budget {BUDGET_S:.0f} s)")
    print(f"speed: {summary.poems_read / best:,.0f} poems/s read, {summary.kept / best:,.0f} poems/s kept")


if __name__ == "__main__":
    main()
