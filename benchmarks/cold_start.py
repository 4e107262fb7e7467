"""How long a fresh ``python -m poetry_rnn.write --begin 日 红 山 夜`` takes, side by side across checkouts.

    python benchmarks/cold_start.py [--checkouts . /tmp/old] [--rounds 5]

Each round runs the command once per checkout, in turns (so a busy spell
of this shared machine falls on all of them alike), as a user would: a new
process, the checkout's own shipped model, ``--seed 1``. Two cases per
checkout: the package's cache (``POETRY_RNN_CACHE``: the vocabulary's
prosody tables) already filled by an earlier run, as on every run after the
first; and an empty cache, as on the first run after installing. Prints the
median and best wall-clock seconds of each, and each checkout's median over
the first's. Then, in this process, where this checkout's time goes:
importing TensorFlow, loading the model, the first ``write`` (tracing the
sampler, building or reading the tables) and a second one.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = ["-m", "poetry_rnn.write", "--begin", "日", "红", "山", "夜", "--seed", "1"]


def fresh_write(checkout, cache):
    """Seconds one fresh ``write`` takes in ``checkout`` with ``cache`` as its cache folder."""
    env = dict(os.environ, PYTHONPATH=checkout, POETRY_RNN_CACHE=cache, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    subprocess.run([sys.executable, *COMMAND], cwd=checkout, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def breakdown(cache):
    """Seconds of each stage of a first and a second write, in this process (this checkout)."""
    os.environ["POETRY_RNN_CACHE"] = cache
    stages, start = {}, time.perf_counter()
    import tensorflow as tf

    stages[f"import TensorFlow {tf.__version__}"], start = time.perf_counter() - start, time.perf_counter()
    sys.path.insert(0, REPO)
    import poetry_rnn

    poet = poetry_rnn.load()
    stages["load the model"], start = time.perf_counter() - start, time.perf_counter()
    poet.write(begin=["日", "红", "山", "夜"], seed=1)
    stages["first write"], start = time.perf_counter() - start, time.perf_counter()
    poet.write(begin=["日", "红", "山", "夜"], seed=2)
    stages["second write"] = time.perf_counter() - start
    return stages


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkouts", nargs="+", default=[REPO], help="repository folders to time, in turns")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    checkouts = [os.path.abspath(c) for c in args.checkouts]
    with tempfile.TemporaryDirectory() as root:
        filled = {c: os.path.join(root, f"filled{k}") for k, c in enumerate(checkouts)}
        for checkout in checkouts:
            fresh_write(checkout, filled[checkout])  # fills the cache, and the OS's file cache
        times = {(c, case): [] for c in checkouts for case in ("filled cache", "empty cache")}
        for round_ in range(args.rounds):
            for checkout in checkouts:
                times[checkout, "filled cache"].append(fresh_write(checkout, filled[checkout]))
                times[checkout, "empty cache"].append(fresh_write(checkout, os.path.join(root, f"empty{round_}")))
        fresh_write(REPO, os.path.join(root, "this"))
        stages = breakdown(os.path.join(root, "this"))
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "unknown")
    print(f"cpu: {cpu}; {args.rounds} rounds; python {' '.join(COMMAND)}\n")
    print("| checkout | cache | median s | best s | median / first checkout's |\n|---|---|---|---|---|")
    for (checkout, case), seconds in times.items():
        ratio = statistics.median(seconds) / statistics.median(times[checkouts[0], case])
        print(f"| {checkout} | {case} | {statistics.median(seconds):.2f} | {min(seconds):.2f} | {ratio:.2f} |")
    print("\nIn one process, this checkout (filled cache):\n")
    for stage, seconds in stages.items():
        print(f"- {stage}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
