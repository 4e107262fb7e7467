"""Where decoding time goes: the sampler with each processor taken out, beside the matmul peak, in one run.

    python benchmarks/decode_profile.py [--model_dir checkpoints/default] [--poems 25] [--repeats 3]
                                        [--precisions float32,bfloat16]

Writes ``--poems`` 七绝 with rhyme and loose 平仄, ``best_of`` drafts each, at
``write``'s sampling defaults (with a reuse table of the pairs of 256 real
poems, as a late round of a long ask has), through ``sampler.Decoder`` with

    all       the whole ``processors.PROCESSORS`` tuple (what ``write`` runs)
    -NAME     the tuple without one processor: its cost is the difference
    model     no processor at all: the model step, the argmax and the loop

For each it prints seconds per call (median of ``--repeats``), characters
per second, the model's arithmetic rate (``network.matmul_flops`` per row
and step, over every row and step the loop ran) and that rate as a share of
the peak ``tf.matmul`` reaches on the step's own shapes (in the model's
dtype) in the same process; each of ``--precisions`` in turn (the model
loaded as ``write --precision`` loads it), then the whole tuple's time at
each against the first.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from poetry_rnn.corpus import reading  # noqa: E402
from poetry_rnn.generation import constraints, drafts, processors, sampler  # noqa: E402
from poetry_rnn.model import network, store  # noqa: E402
from poetry_rnn.options import SamplingOptions  # noqa: E402
from poetry_rnn.verse import forms, poem_request  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_name():
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        return next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "unknown")


def matmul_peak(model, rows, seconds=2.0):
    """GFLOP/s of tf.matmul on the step's (rows x in) @ (in x out) products, one after another, in a tf.function."""
    shapes = [shape for name, shape in network.variable_shapes(model.config).items()
              if name.endswith("kernel") and not name.startswith("bag_")]
    dtype = model.compute_dtype
    operands = [(tf.random.normal([rows, a], dtype=dtype), tf.random.normal([a, b], dtype=dtype)) for a, b in shapes]
    flops = sum(2 * rows * a * b for a, b in shapes)

    @tf.function
    def products():
        return [tf.reduce_sum(tf.matmul(x, w)) for x, w in operands]

    products()
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        [t.numpy() for t in products()]
        calls += 1
    return flops * calls / (time.perf_counter() - started) / 1e9


def reuse_setting(vocab, rows):
    """A reuse table of the character pairs of 256 real poems (what a round late in a long ask avoids)."""
    path = os.path.join(REPO, "data", "poems.txt")
    poems = reading.read_poems(path)[0][:256] if os.path.exists(path) else []
    pairs = {b for p in poems for b in forms.bigrams(p.content) if all(c in vocab for c in b)}
    return processors.ReuseTable.build(vocab, [pairs]), np.zeros(rows, np.int32)


def timed(decoder, plan, settings, repeats):
    decoder.decode(plan, **settings)  # trace
    times, decoded = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        decoded = decoder.decode(plan, **settings)
        times.append(time.perf_counter() - started)
    return statistics.median(times), decoded


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default=None, help="default: the shipped model")
    parser.add_argument("--poems", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precisions", default="float32,bfloat16", help="the decoder's arithmetic, each in turn")
    args = parser.parse_args()
    whole = {}
    for policy in args.precisions.split(","):
        loaded = store.load(args.model_dir or store.DEFAULT_MODEL_DIR, policy)
        whole[policy] = profile(loaded, args.poems, args.repeats)
    if len(whole) > 1:
        base = next(iter(whole.values()))
        print("\nall processors, against the first: " + ", ".join(f"{p} {s / base:.2f}x" for p, s in whole.items()))


def profile(loaded, poems, repeats):
    """Print the variant table for one loaded model; return the whole tuple's seconds per call."""
    sampling = SamplingOptions(seed=0)
    request = poem_request.PoemRequest(form="qijue", rhyme=True, tones="loose")
    owner, settings = drafts.sampling_rows([sampling] * poems, np.arange(poems))
    plan = constraints.plan([request] * len(owner), loaded.vocab, loaded.config)
    rows = len(owner)
    settings["reuse"] = reuse_setting(loaded.vocab, rows)
    peak = matmul_peak(loaded.model, rows)
    per_row_step = network.matmul_flops(loaded.config)
    print(f"\ncpu: {cpu_name()}; model {loaded.config.layers}x{loaded.config.units} {loaded.config.cell} in "
          f"{loaded.model.compute_dtype}, vocabulary {len(loaded.vocab)}, {per_row_step / 1e6:.1f} MFLOP per row-step")
    print(f"{poems} 七绝 x best_of {sampling.best_of} = {rows} rows; tf.matmul peak on the step's shapes: "
          f"{peak:.1f} GFLOP/s")
    print(f"{'variant':<14} {'s/call':>8} {'chars/s':>9} {'GFLOP/s':>8} {'of peak':>8} {'vs all':>7}")
    variants = [("all", processors.PROCESSORS)]
    variants += [(f"-{p.__name__}", tuple(q for q in processors.PROCESSORS if q is not p)) for p in processors.PROCESSORS]
    variants.append(("model", ()))
    base = None
    for name, chosen in variants:
        seconds, decoded = timed(sampler.Decoder(loaded.model, chosen), plan, settings, repeats)
        row_steps = rows * decoded.tokens.shape[1]
        characters = int(np.sum(decoded.tokens != 0))
        rate = per_row_step * row_steps / seconds / 1e9
        base = base or seconds
        print(f"{name:<14} {seconds:8.3f} {characters / seconds:9.0f} {rate:8.1f} {rate / peak:8.2f} "
              f"{seconds / base:7.2f}")
    return base


if __name__ == "__main__":
    main()
