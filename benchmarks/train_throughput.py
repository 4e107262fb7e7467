"""Training throughput: a seed-style step against ours, side by side, and the machine's matmul peak.

    python benchmarks/train_throughput.py                         # LSTM 2x512, embedding 256, data/poems.txt
    python benchmarks/train_throughput.py --units 128 --seconds 2 --rounds 1   # a quick look

Every variant trains the same network size on the same corpus and vocabulary
and is timed in short windows after a warm-up; the variants take turns,
round after round, so a machine shared with other work slows them alike.
Rates are given by two clocks: the wall clock (what a user sees, noisy when
other jobs share the machine) and the process's CPU time times the number of
cores (the rate on an idle machine if the work spreads over every core, as
TensorFlow's matmuls do; it flatters a variant that leaves cores idle).
Reported per variant: non-pad (real) tokens per second, the padding share,
and model FLOP/s. FLOPs per token: 0 for the embedding lookup, 2*m*n*k for
every matmul (per token and layer: input 2*in*4u and recurrent 2*u*4u for
an LSTM, 3u instead of 4u for a GRU; output projection 2*u*V); training =
3x forward. "Useful" FLOP/s counts real tokens only; "executed" counts every
position the step computed, padding included.

Variants (``--variants``, comma-separated; default all):

* ``reference``: what the seed projects did. Random batches of poems padded
  to the longest poem of the corpus (200 characters + BOS/EOS), float32, one
  ``keras.layers.RNN`` over ``StackedRNNCells`` of ``LSTMCell``, the masked
  per-poem loss, Adam with global-norm clipping, one graph for that fixed
  shape run once per batch (the TF1 seeds built one graph and ran it with
  ``session.run`` per batch; padding every batch to the corpus maximum is
  what kept their shape fixed). It never retraces, so it is a conservative
  reference: a seed step that retraced per batch shape would be slower.
* ``ours_f32``: ``steps.make_steps`` with the bucketed ``dataset.poem_dataset``
  (our default training step, float32, --batch_size).
* ``ours_bf16``: the same with ``--mixed_precision bf16`` (bf16 matmuls,
  float32 variables and softmax).
* ``ours_f32_bigbatch`` / ``ours_bf16_bigbatch``: the same at --big_batch_size.
* ``keraslstm_f32`` / ``keraslstm_bf16``: ours with ``lstm_kernel="keras"``
  (the Keras LSTM layer instead of ``poetry_rnn.model.fast_lstm``).
* ``xla_f32`` / ``xla_bf16`` against ``fixed_f32`` / ``fixed_bf16``: our step
  with and without ``jit_compile=True`` on one fixed qijue-shaped batch
  (XLA compiles once per shape, and bucketed batches have many shapes; the
  compile time is printed).
* ``sampled_bf16``: bf16 with a sampled softmax (``tf.nn.sampled_softmax_loss``,
  --num_sampled classes) for training; evaluation would keep the full softmax.
* ``adaptive_f32`` / ``adaptive_bf16``: ours with ``--adaptive_softmax`` at
  --cutoffs (an exact adaptive softmax: the same full distribution from
  narrow bands; its own, smaller, FLOP count).
* ``peak_f32`` / ``peak_bf16``: ``tf.matmul`` in a ``tf.function`` on the
  shapes our step multiplies (output projection over a bucket of tokens,
  recurrent step, input projection); the best of them is the peak.
"""

import argparse
import dataclasses
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import keras  # noqa: E402

from poetry_rnn.corpus import reading
from poetry_rnn.training import dataset, steps
from poetry_rnn.model import fast_lstm as fast_lstm_lib, loss as loss_lib, network as model_lib  # noqa: E402
from poetry_rnn.model import vocab as vocab_lib  # noqa: E402
from poetry_rnn.model.network import ModelConfig, PoetryModel  # noqa: E402
from poetry_rnn.model.vocab import Vocab  # noqa: E402

ALL_VARIANTS = (
    "reference", "ours_f32", "ours_bf16", "ours_f32_bigbatch", "ours_bf16_bigbatch", "keraslstm_f32", "keraslstm_bf16",
    "fixed_f32", "xla_f32", "fixed_bf16", "xla_bf16", "sampled_bf16", "adaptive_f32", "adaptive_bf16", "peak_f32",
    "peak_bf16",
)
POLICIES = {"f32": "float32", "bf16": "mixed_bfloat16"}


def flops_per_token(config):
    """Training FLOPs per position: 3x the forward matmuls (``model.matmul_flops``; embedding lookup = 0)."""
    return 3 * model_lib.matmul_flops(config)


def sampled_flops_per_token(config, num_sampled):
    """As flops_per_token, with the output projection over 1 + num_sampled classes."""
    return flops_per_token(config) - 3 * 2 * config.units * (config.vocab_size - 1 - num_sampled)


class Runner:
    """One variant: ``warm_up()`` once, then ``window(seconds)`` -> (tokens, positions, flops, elapsed)."""

    kind = "train"
    dtype = "f32"

    def warm_up(self):
        start = time.perf_counter()
        for _ in range(self.warm_up_steps):
            self.step()
        return time.perf_counter() - start

    warm_up_steps = 2

    def window(self, seconds):
        """Steps for ``seconds`` (at least one): (tokens, positions, flops, wall s, process CPU s)."""
        tokens = positions = flops = 0.0
        start, cpu = time.perf_counter(), time.process_time()
        while True:
            t, p, f = self.step()
            tokens, positions, flops = tokens + t, positions + p, flops + f
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return tokens, positions, flops, elapsed, time.process_time() - cpu


class Reference(Runner):
    def __init__(self, sequences, config, batch_size, max_len, seed=0):
        keras.mixed_precision.set_global_policy("float32")
        cells = [keras.layers.LSTMCell(config.units) for _ in range(config.layers)]
        inputs = keras.Input((None,), dtype="int32")
        x = keras.layers.Embedding(config.vocab_size, config.embed_dim)(inputs)
        x = keras.layers.RNN(keras.layers.StackedRNNCells(cells), return_sequences=True)(x)
        self.model = keras.Model(inputs, keras.layers.Dense(config.vocab_size)(x))
        self.optimizer = keras.optimizers.Adam(2e-3, global_clipnorm=5.0)
        self.sequences, self.batch_size, self.width = sequences, batch_size, max_len + 2
        self.rng = np.random.default_rng(seed)
        self.flops = flops_per_token(config)
        model, optimizer = self.model, self.optimizer

        @tf.function
        def train_step(inputs, targets, lengths):
            with tf.GradientTape() as tape:
                logits = model(inputs, training=True)
                per_poem, _, tokens = loss_lib.masked_poem_loss(targets, logits, lengths)
                loss = tf.reduce_mean(per_poem)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return tokens

        self.train_step = train_step

    def step(self):
        batch = np.zeros((self.batch_size, self.width), np.int32)  # PAD = 0 up to the corpus maximum
        for row, i in enumerate(self.rng.integers(0, len(self.sequences), self.batch_size)):
            batch[row, : len(self.sequences[i])] = self.sequences[i]
        lengths = (batch[:, 1:] != vocab_lib.PAD).sum(axis=1).astype(np.int32)
        tokens = float(self.train_step(batch[:, :-1], batch[:, 1:], lengths))
        positions = float(batch[:, 1:].size)
        return tokens, positions, positions * self.flops


class Ours(Runner):
    """steps.make_steps on bucketed batches (or, with ``fixed``, one fixed batch)."""

    def __init__(self, sequences, config, batch_size, dtype, jit_compile=False, fixed=None, fast_lstm=True, seed=0):
        keras.mixed_precision.set_global_policy(POLICIES[dtype])
        self.dtype = dtype
        self.model = PoetryModel(config, lstm_kernel=fast_lstm_lib.default_kernel() if fast_lstm else "keras")
        self.optimizer = keras.optimizers.Adam(2e-3, global_clipnorm=5.0)
        self.optimizer.build(self.model.trainable_variables)
        self.train_step, _ = steps.make_steps(self.model, self.optimizer, tf.distribute.get_strategy())
        if jit_compile:
            self.train_step = tf.function(self.train_step.python_function, jit_compile=True)
        self.flops = flops_per_token(config)
        if fixed is not None:
            self.batches = iter(lambda: fixed, None)
        else:
            ds = dataset.poem_dataset(sequences, batch_size, shuffle_seed=seed).dataset.repeat()
            self.batches = iter(ds)
        keras.mixed_precision.set_global_policy("float32")

    def step(self):
        (_, _, tokens, positions, _), _ = self.train_step(next(self.batches))
        positions = float(positions)
        return float(tokens), positions, positions * self.flops


class Sampled(Runner):
    """Our model and bucketed batches, trained with a sampled softmax over ``num_sampled`` classes."""

    def __init__(self, sequences, config, batch_size, dtype, num_sampled, seed=0):
        keras.mixed_precision.set_global_policy(POLICIES[dtype])
        self.dtype = dtype
        model = self.model = PoetryModel(config)
        optimizer = self.optimizer = keras.optimizers.Adam(2e-3, global_clipnorm=5.0)
        optimizer.build(model.trainable_variables)
        keras.mixed_precision.set_global_policy("float32")
        self.flops = sampled_flops_per_token(config, num_sampled)
        self.batches = iter(dataset.poem_dataset(sequences, batch_size, shuffle_seed=seed).dataset.repeat())
        spec = (tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32))

        @tf.function(input_signature=spec)
        def train_step(inputs, targets, lengths):
            with tf.GradientTape() as tape:
                x = model.features(inputs)
                for rnn, state in zip(model.rnns, model.initial_states(tf.shape(inputs)[0])):
                    x, *_ = rnn(x, initial_state=list(state), training=True)
                units = tf.shape(x)[-1]
                nll = tf.nn.sampled_softmax_loss(
                    weights=tf.transpose(model.head.kernel), biases=model.head.bias,
                    labels=tf.reshape(tf.cast(targets, tf.int64), [-1, 1]), inputs=tf.cast(tf.reshape(x, [-1, units]), tf.float32),
                    num_sampled=num_sampled, num_classes=config.vocab_size,
                )
                mask = tf.sequence_mask(lengths, tf.shape(targets)[1], tf.float32)
                per_poem = tf.reduce_sum(tf.reshape(nll, tf.shape(mask)) * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, 1), 1.0)
                loss = tf.reduce_mean(per_poem)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return tf.reduce_sum(mask), tf.cast(tf.size(targets), tf.float32)

        self.train_step = train_step

    def step(self):
        tokens, positions = self.train_step(*next(self.batches))
        positions = float(positions)
        return float(tokens), positions, positions * self.flops


class Peak(Runner):
    """The best tf.matmul FLOP/s over shapes our step multiplies."""

    kind = "peak"

    def __init__(self, config, batch_size, bucket_tokens, dtype):
        self.dtype = dtype
        tf_dtype = tf.float32 if dtype == "f32" else tf.bfloat16
        gates = 4 * config.units
        shapes = [
            (bucket_tokens, config.units, config.vocab_size),  # output projection over a batch of tokens
            (bucket_tokens, config.units + config.embed_dim, gates),  # input projections over a batch
            (batch_size, 2 * config.units, gates),  # one recurrent step
        ]
        self.cases = []
        for m, k, n in shapes:
            a = tf.cast(tf.random.normal((m, k)), tf_dtype)
            b = tf.cast(tf.random.normal((k, n)), tf_dtype)
            # Reduce to a scalar in-graph, so the timing is the matmul, not a copy back.
            f = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b)[:1, :1], tf.float32)))
            self.cases.append(((m, k, n), f, a, b))
        self.best = {}

    def warm_up(self):
        start = time.perf_counter()
        for _, f, a, b in self.cases:
            float(f(a, b))
        return time.perf_counter() - start

    def window(self, seconds):
        """Each shape for a share of ``seconds``; the best shape's (flops, wall, CPU) as a train window's."""
        best = None
        for shape, f, a, b in self.cases:
            count, start, cpu = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - start < seconds / len(self.cases):
                float(f(a, b))
                count += 1
            row = (0.0, 0.0, 2.0 * math.prod(shape) * count, time.perf_counter() - start, time.process_time() - cpu)
            rates = self.best.setdefault(shape, [0.0, 0.0])
            rates[0], rates[1] = max(rates[0], row[2] / row[3]), max(rates[1], row[2] / row[4])
            if best is None or row[2] / row[4] > best[2] / best[4]:
                best = row
        return best


def fixed_batch(sequences, batch_size, length=34):
    """One batch of ``length``-token poems (a qijue: BOS + 32 characters + EOS)."""
    chosen = [s for s in sequences if len(s) == length][:batch_size]
    x = tf.constant(np.stack(chosen))
    return (x[:, :-1], x[:, 1:], tf.fill([len(chosen)], length - 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(REPO, "data", "poems.txt"))
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--embed_dim", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--big_batch_size", type=int, default=128)
    parser.add_argument("--num_sampled", type=int, default=512)
    parser.add_argument("--cutoffs", default="1024,3072", help="the adaptive variants' --adaptive_softmax")
    parser.add_argument("--min_count", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one timed window")
    parser.add_argument("--rounds", type=int, default=2, help="timed windows per variant, taken in turns")
    parser.add_argument("--variants", default=",".join(ALL_VARIANTS))
    args = parser.parse_args()
    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(wanted) - set(ALL_VARIANTS)
    if unknown:
        sys.exit(f"unknown variants: {', '.join(sorted(unknown))}; choose from {', '.join(ALL_VARIANTS)}")

    started = time.perf_counter()
    poems, _ = reading.read_poems(args.data, reading.DEFAULT_MAX_LEN)
    vocab = Vocab.build((p.content for p in poems), args.min_count)
    sequences = dataset.encode_poems(poems, vocab)
    config = ModelConfig(vocab_size=len(vocab), units=args.units, layers=args.layers, embed_dim=args.embed_dim)
    adaptive = dataclasses.replace(config, adaptive_softmax=args.cutoffs)
    mean_len = float(np.mean([len(s) - 1 for s in sequences]))
    print(f"corpus {args.data}: {len(sequences):,} poems, vocabulary {len(vocab):,}, mean {mean_len:.1f} target tokens per poem")
    print(f"model: LSTM {config.layers}x{config.units}, embedding {config.embed_dim}; "
          f"{flops_per_token(config) / 1e6:.1f} MFLOP per token trained; batch {args.batch_size} (big {args.big_batch_size})")
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}, {os.cpu_count()} CPUs; "
          f"{args.rounds} round(s) of {args.seconds:g} s windows, variants in turn\n")

    qijue = fixed_batch(sequences, args.batch_size)
    makers = {
        "reference": lambda: Reference(sequences, config, args.batch_size, reading.DEFAULT_MAX_LEN),
        "ours_f32": lambda: Ours(sequences, config, args.batch_size, "f32"),
        "ours_bf16": lambda: Ours(sequences, config, args.batch_size, "bf16"),
        "ours_f32_bigbatch": lambda: Ours(sequences, config, args.big_batch_size, "f32"),
        "ours_bf16_bigbatch": lambda: Ours(sequences, config, args.big_batch_size, "bf16"),
        "keraslstm_f32": lambda: Ours(sequences, config, args.batch_size, "f32", fast_lstm=False),
        "keraslstm_bf16": lambda: Ours(sequences, config, args.batch_size, "bf16", fast_lstm=False),
        "fixed_f32": lambda: Ours(sequences, config, args.batch_size, "f32", fixed=qijue),
        "xla_f32": lambda: Ours(sequences, config, args.batch_size, "f32", jit_compile=True, fixed=qijue),
        "fixed_bf16": lambda: Ours(sequences, config, args.batch_size, "bf16", fixed=qijue),
        "xla_bf16": lambda: Ours(sequences, config, args.batch_size, "bf16", jit_compile=True, fixed=qijue),
        "adaptive_f32": lambda: Ours(sequences, adaptive, args.batch_size, "f32"),
        "adaptive_bf16": lambda: Ours(sequences, adaptive, args.batch_size, "bf16"),
        "sampled_bf16": lambda: Sampled(sequences, config, args.batch_size, "bf16", args.num_sampled),
        "peak_f32": lambda: Peak(config, args.batch_size, args.batch_size * int(round(mean_len)), "f32"),
        "peak_bf16": lambda: Peak(config, args.batch_size, args.batch_size * int(round(mean_len)), "bf16"),
    }
    runners = {}
    for name in wanted:
        runner = makers[name]()
        seconds = runner.warm_up()
        runners[name] = runner
        print(f"  warm-up {name}: {seconds:.1f} s (tracing{', XLA compile' if name.startswith('xla') else ''} and first steps)", flush=True)
    results = {name: [] for name in runners}
    for r in range(args.rounds):
        for name, runner in runners.items():
            results[name].append(runner.window(args.seconds))
        print(f"  round {r + 1}/{args.rounds} done", flush=True)

    cores = os.cpu_count()

    def rates(name, index):
        """Per window: (per wall second, per process-CPU second x cores) of column ``index``."""
        return [(row[index] / row[3], row[index] / row[4] * cores) for row in results[name]]

    def best(name, index, clock):
        return max(r[clock] for r in rates(name, index))

    # Two clocks. Wall: what a user sees, but other jobs on a shared machine
    # steal cores at random. CPU: the work per second of CPU time this process
    # got, times the number of cores = the rate on an otherwise idle machine
    # (assuming the work would spread over all cores, as TensorFlow does).
    peaks = {d: (best(f"peak_{d}", 2, 0), best(f"peak_{d}", 2, 1)) for d in ("f32", "bf16") if f"peak_{d}" in results}
    print("\nmatmul peak (tf.function tf.matmul; best window; GFLOP/s by wall clock | by CPU time x cores):")
    for d, (wall_peak, cpu_peak) in peaks.items():
        shapes = ", ".join(f"{m}x{k}x{n} {w / 1e9:.0f} | {c * cores / 1e9:.0f}" for (m, k, n), (w, c) in runners[f"peak_{d}"].best.items())
        print(f"  {d:4s}: {wall_peak / 1e9:6.1f} | {cpu_peak / 1e9:6.1f}   (per shape: {shapes})")

    print("\n                     real tokens/s (best window)   padding   useful GFLOP/s          fraction of peak (same dtype)")
    print("variant                 wall    |  CPU x cores                wall  |  CPU x cores     wall  |  CPU x cores")
    table = {}
    for name, runner in runners.items():
        if runner.kind != "train":
            continue
        tokens = sum(row[0] for row in results[name])
        padding = 1 - tokens / sum(row[1] for row in results[name])
        wall, cpu = best(name, 0, 0), best(name, 0, 1)
        table[name] = (wall, cpu)
        useful = [f * (1 - padding) for f in (best(name, 2, 0), best(name, 2, 1))]
        peak = peaks.get(runner.dtype)
        share = f"{useful[0] / peak[0]:8.0%}  | {useful[1] / peak[1]:8.0%}" if peak else "       -  |        -"
        print(f"{name:20s} {wall:8.0f}  | {cpu:8.0f}      {padding:10.1%}   {useful[0] / 1e9:10.1f}  | {useful[1] / 1e9:8.1f}      {share}")

    def ratio(a, b, label):
        if a in table and b in table:
            print(f"  {label:58s} {table[a][0] / table[b][0]:5.2f}x | {table[a][1] / table[b][1]:5.2f}x")

    print("\nratios of real tokens/s (best windows; wall | CPU x cores):")
    ratio("ours_f32", "reference", "ours (float32, batch %d) / reference" % args.batch_size)
    ratio("ours_bf16", "reference", "ours (bf16, batch %d) / reference" % args.batch_size)
    ratio("ours_bf16_bigbatch", "reference", f"ours (bf16, batch {args.big_batch_size}) / reference")
    ratio("ours_bf16", "ours_f32", "lever --mixed_precision bf16 (batch %d)" % args.batch_size)
    ratio("ours_bf16_bigbatch", "ours_f32_bigbatch", f"lever --mixed_precision bf16 (batch {args.big_batch_size})")
    ratio("ours_f32_bigbatch", "ours_f32", f"lever batch {args.big_batch_size} vs {args.batch_size}, float32")
    ratio("ours_bf16_bigbatch", "ours_bf16", f"lever batch {args.big_batch_size} vs {args.batch_size}, bf16")
    ratio("adaptive_f32", "ours_f32", f"lever --adaptive_softmax {args.cutoffs}, float32")
    ratio("adaptive_bf16", "ours_bf16", f"lever --adaptive_softmax {args.cutoffs}, bf16")
    ratio("ours_f32", "keraslstm_f32", "lever fast_lstm vs the Keras LSTM layer, float32")
    ratio("ours_bf16", "keraslstm_bf16", "lever fast_lstm vs the Keras LSTM layer, bf16")
    ratio("xla_f32", "fixed_f32", "lever XLA jit_compile, float32 (one fixed shape)")
    ratio("xla_bf16", "fixed_bf16", "lever XLA jit_compile, bf16 (one fixed shape)")
    ratio("sampled_bf16", "ours_bf16", f"lever sampled softmax ({args.num_sampled} classes), bf16")
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
