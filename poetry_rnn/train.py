"""Train a character-level RNN poet: ``python -m poetry_rnn.train --cell lstm``.

The loop is written out (no ``model.fit``) because poems need things Keras'
loop does not give: the masked per-poem loss, perplexity from token totals,
bucketed batches of varying shape through one traced step, resuming in the
middle of an epoch, and sample poems in TensorBoard. It runs under a
``tf.distribute`` strategy, so one code path serves one CPU and many GPUs.

``fit(data, model_dir, options)`` is the whole training run as a plain
function; ``main`` only turns flags into ``TrainOptions``.
"""

import dataclasses
import json
import math
import os
import signal
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from absl import flags

from poetry_rnn import cli, corpus, dataset, loss as loss_lib, modeldir
from poetry_rnn.errors import PoetryError
from poetry_rnn.model import ModelConfig, PoetryModel
from poetry_rnn.vocab import Vocab

PRECISION_POLICIES = {"off": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
OPTIMIZERS = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
SAMPLE_BEGINS = "日红山夜"


@dataclasses.dataclass
class TrainOptions:
    """Training hyper-parameters (the network's own are in ModelConfig)."""

    # The network (ModelConfig fields except vocab_size, which the data decides).
    cell: str = "lstm"
    input: str = "embedding"
    embed_dim: int = 256
    units: int = 512
    layers: int = 2
    dropout: float = 0.0
    condition: str = "none"
    # Data.
    min_count: int = 2  # rarer characters become UNK
    max_len: int = corpus.DEFAULT_MAX_LEN  # longer poems are skipped
    valid_fraction: float = 0.02  # held out by content hash, evaluated each epoch
    # Optimisation.
    optimizer: str = "adam"
    learning_rate: float = 2e-3
    clip_norm: float = 5.0  # global-norm gradient clipping; 0 = off
    batch_size: int = 64
    epochs: int = 10
    seed: int = 0
    max_steps: int = 0  # stop after this many steps in all (0 = run all epochs)
    # Bookkeeping.
    checkpoint_every: int = 500  # steps between checkpoints (also saved at each epoch end)
    keep_checkpoints: int = 3
    samples: int = 4  # sample poems written to TensorBoard per epoch
    strategy: str = "default"  # default | mirrored | multiworker | tpu
    mixed_precision: str = "off"  # off | bf16 (CPUs with AVX-512 bf16, TPUs) | fp16 (GPUs, with loss scaling)
    quiet: bool = False  # no progress bar (tests, compare)

    def model_config(self, vocab_size):
        fields = {f.name for f in dataclasses.fields(ModelConfig)} - {"vocab_size"}
        return ModelConfig(vocab_size=vocab_size, **{k: getattr(self, k) for k in fields})


@dataclasses.dataclass
class History:
    """What a run measured, per epoch; returned by fit for tests and compare."""

    train_loss: list = dataclasses.field(default_factory=list)
    train_perplexity: list = dataclasses.field(default_factory=list)
    valid_perplexity: list = dataclasses.field(default_factory=list)
    tokens_per_second: list = dataclasses.field(default_factory=list)
    padding_fraction: list = dataclasses.field(default_factory=list)
    step: int = 0
    parameters: int = 0
    interrupted: bool = False


class TrainingDiverged(PoetryError):
    """The loss became NaN or infinite; the last good checkpoint stays the latest."""


def make_strategy(name):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise PoetryError(f"unknown strategy {name!r}; choose default, mirrored, multiworker or tpu")


def is_chief(strategy):
    """Only the chief writes checkpoints and logs (TensorFlow's multi-worker convention)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )


def check_writable(model_dir):
    """Fail before training, not after an epoch, when model_dir cannot be written."""
    try:
        os.makedirs(model_dir, exist_ok=True)
        probe = os.path.join(model_dir, ".write_test")
        with open(probe, "wb") as handle:
            handle.write(b"\0" * 1024 * 1024)
            handle.flush()
            os.fsync(handle.fileno())
        os.unlink(probe)
    except OSError as error:
        raise PoetryError(f"cannot write to model directory {model_dir}: {error.strerror}") from None


def prepare_vocab(poems, model_dir, options):
    """The vocabulary: built from the data, or the model dir's own when resuming."""
    built = Vocab.build(poems_text(poems, options.condition), options.min_count)
    if not modeldir.exists(model_dir):
        return built
    config, _, saved = modeldir.read_config(model_dir)
    if saved != built:
        raise PoetryError(
            f"the data gives a different vocabulary ({len(built)} tokens, fingerprint {built.fingerprint}) "
            f"than {model_dir} ({len(saved)} tokens, fingerprint {saved.fingerprint}); use a new --model_dir"
        )
    wanted = options.model_config(len(saved))
    if wanted != config:
        diff = ", ".join(f"{k}={v} (saved {getattr(config, k)})" for k, v in wanted.to_dict().items() if getattr(config, k) != v)
        raise PoetryError(f"{model_dir} holds a different model: {diff}; use a new --model_dir")
    return saved


def poems_text(poems, condition):
    for poem in poems:
        yield poem.content
        if condition == "title":
            yield poem.title


def fit(data, model_dir, options=None):
    """Train on a poems.txt file into ``model_dir``, resuming if it holds a run."""
    options = options or TrainOptions()
    if options.optimizer not in OPTIMIZERS:
        raise PoetryError(f"unknown optimizer {options.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if not 0 <= options.valid_fraction < 1:
        raise PoetryError(f"--valid_fraction must be in [0, 1), got {options.valid_fraction}")
    if options.batch_size < 1 or options.epochs < 1 or options.learning_rate <= 0:
        raise PoetryError("--batch_size, --epochs and --learning_rate must be positive")
    check_writable(model_dir)
    poems, stats = corpus.read_poems(data, options.max_len)
    log = (lambda *a: None) if options.quiet else (lambda *a: print(*a, file=sys.stderr))
    log(f"{data}: {stats.summary()}")
    vocab = prepare_vocab(poems, model_dir, options)
    config = options.model_config(len(vocab))
    train_poems, valid_poems = dataset.split_train_valid(poems, options.valid_fraction)
    log(f"vocabulary {len(vocab)} tokens; {len(train_poems)} training and {len(valid_poems)} validation poems")
    train_seqs = dataset.encode_poems(train_poems, vocab, options.condition)
    valid_seqs = dataset.encode_poems(valid_poems, vocab, options.condition)

    keras.utils.set_random_seed(options.seed)
    if options.mixed_precision not in PRECISION_POLICIES:
        raise PoetryError(f"unknown --mixed_precision {options.mixed_precision!r}; choose off, bf16 or fp16")
    # Variables stay float32; the loss casts logits to float32 before the softmax.
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[options.mixed_precision])
    strategy = make_strategy(options.strategy)
    chief = is_chief(strategy)
    with strategy.scope():
        model = PoetryModel(config)
        optimizer = OPTIMIZERS[options.optimizer](
            learning_rate=options.learning_rate, global_clipnorm=options.clip_norm or None
        )
        if options.mixed_precision == "fp16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        batch_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="batch_in_epoch")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step, epoch=epoch, batch_in_epoch=batch_in_epoch)
    # Non-chief workers write to a scratch folder, as TensorFlow's multi-worker guide does.
    ckpt_dir = modeldir.checkpoint_dir(model_dir) if chief else os.path.join(model_dir, f".worker_{strategy.cluster_resolver.task_id}")
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=options.keep_checkpoints)
    if manager.latest_checkpoint:
        modeldir.restore_checkpoint(checkpoint, manager.latest_checkpoint).assert_existing_objects_matched()
        optimizer.learning_rate = options.learning_rate  # the checkpoint's value must not override the flag
        log(f"resumed from {manager.latest_checkpoint}: step {int(step)}, epoch {int(epoch) + 1}, batch {int(batch_in_epoch)}")
    if chief:
        modeldir.save_config(model_dir, config, vocab, {k: v for k, v in dataclasses.asdict(options).items() if k != "quiet"})

    history = History(parameters=model.count_params())
    log(f"model: {config.layers}x{config.units} {config.cell}, {config.input} input, {history.parameters:,} parameters")
    train_step, eval_step = make_steps(model, optimizer, strategy)
    writers = {
        name: tf.summary.create_file_writer(os.path.join(model_dir, modeldir.LOGS, name)) if chief else tf.summary.create_noop_writer()
        for name in ("train", "valid")
    }
    interrupted = {"flag": False}
    previous_handler = signal.signal(signal.SIGINT, lambda *_: interrupted.__setitem__("flag", True))
    try:
        while int(epoch) < options.epochs:
            e, skip = int(epoch), int(batch_in_epoch)
            batches = dataset.poem_dataset(train_seqs, options.batch_size, dataset.shuffle_seed(options.seed, e), skip)
            progress = None if options.quiet else keras.utils.Progbar(batches.batches_per_epoch, stateful_metrics=["loss", "tok/s"])
            totals = np.zeros(4)  # nll, real tokens, padded positions, per-poem loss sum
            start, seen = time.perf_counter(), skip
            for batch in strategy.experimental_distribute_dataset(batches.dataset):
                loss, nll, tokens, positions, norm = (float(x) for x in train_step(batch))
                if not (math.isfinite(loss) and math.isfinite(nll)):
                    raise TrainingDiverged(
                        f"loss became {loss if not math.isfinite(loss) else nll} at step {int(step) + 1}; kept the last good checkpoint "
                        f"({manager.latest_checkpoint or 'none'}); lower --learning_rate or set --clip_norm"
                    )
                step.assign_add(1)
                batch_in_epoch.assign_add(1)
                seen += 1
                totals += (nll, tokens, positions, loss)
                rate = totals[1] / (time.perf_counter() - start)
                with writers["train"].as_default(step=int(step)):
                    tf.summary.scalar("loss", loss)
                    tf.summary.scalar("grad_norm", norm)
                    tf.summary.scalar("tokens_per_second", rate)
                    tf.summary.scalar("learning_rate", float(optimizer.learning_rate))
                if progress:
                    progress.update(min(seen, batches.batches_per_epoch), [("loss", loss), ("tok/s", rate)])
                if int(step) % options.checkpoint_every == 0:
                    manager.save(checkpoint_number=int(step))
                if interrupted["flag"] or (options.max_steps and int(step) >= options.max_steps):
                    break
            if interrupted["flag"] or (options.max_steps and int(step) >= options.max_steps):
                manager.save(checkpoint_number=int(step))
                history.interrupted = interrupted["flag"]
                if interrupted["flag"]:
                    log(f"\ninterrupted at step {int(step)}; saved {manager.latest_checkpoint}")
                break
            epoch.assign_add(1)
            batch_in_epoch.assign(0)
            manager.save(checkpoint_number=int(step))
            elapsed = time.perf_counter() - start
            record_epoch(history, totals, elapsed, batches.batches_per_epoch - skip)
            valid_ppl = evaluate_perplexity(eval_step, strategy, valid_seqs, options.batch_size)
            history.valid_perplexity.append(valid_ppl)
            with writers["train"].as_default(step=int(step)):
                tf.summary.scalar("perplexity", history.train_perplexity[-1])
                tf.summary.scalar("padding_fraction", history.padding_fraction[-1])
                if options.samples and chief:
                    tf.summary.text("samples", sample_poems(model, vocab, options), step=int(step))
            with writers["valid"].as_default(step=int(step)):
                tf.summary.scalar("perplexity", valid_ppl)
                tf.summary.scalar("loss", math.log(valid_ppl) if valid_ppl == valid_ppl else valid_ppl)
            log(
                f"epoch {e + 1}/{options.epochs}: train loss {history.train_loss[-1]:.3f}, "
                f"train ppl {history.train_perplexity[-1]:.2f}, valid ppl {valid_ppl:.2f}, "
                f"{history.tokens_per_second[-1]:.0f} tokens/s, padding {history.padding_fraction[-1]:.1%}"
            )
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        for writer in writers.values():
            writer.flush()
    history.step = int(step)
    return history


def record_epoch(history, totals, elapsed, batches):
    nll, tokens, positions, loss_sum = totals
    history.train_loss.append(loss_sum / max(batches, 1))
    history.train_perplexity.append(loss_lib.perplexity(nll, tokens))
    history.tokens_per_second.append(tokens / elapsed)
    history.padding_fraction.append(1 - tokens / positions if positions else 0.0)


def make_steps(model, optimizer, strategy):
    """The distributed train and eval steps, each traced once for all batch shapes."""
    spec = (
        tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([None], tf.int32),
    )

    def replica_train(inputs, targets, lengths):
        with tf.GradientTape() as tape:
            logits, _ = model(inputs, training=True)
            per_poem, nll, tokens = loss_lib.masked_poem_loss(targets, logits, lengths)
            loss = tf.nn.compute_average_loss(per_poem)
            scaled = optimizer.scale_loss(loss)  # fp16 loss scaling; identity otherwise
        variables = model.trainable_variables
        grads = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(grads, variables))
        positions = tf.cast(tf.size(targets), tf.float32)
        return loss, nll, tokens, positions, tf.linalg.global_norm(grads)

    def replica_eval(inputs, targets, lengths):
        logits, _ = model(inputs, training=False)
        _, nll, tokens = loss_lib.masked_poem_loss(targets, logits, lengths)
        return nll, tokens

    def reduce(values, means=()):
        return tuple(
            strategy.reduce(tf.distribute.ReduceOp.MEAN if i in means else tf.distribute.ReduceOp.SUM, v, axis=None)
            for i, v in enumerate(values)
        )

    @tf.function(input_signature=[spec])
    def train_step(batch):
        return reduce(strategy.run(replica_train, args=batch), means=(4,))

    @tf.function(input_signature=[spec])
    def eval_step(batch):
        return reduce(strategy.run(replica_eval, args=batch))

    return train_step, eval_step


def evaluate_perplexity(eval_step, strategy, sequences, batch_size):
    """exp(total NLL / real tokens) over ``sequences``, in file order."""
    if not sequences:
        return float("nan")
    totals = np.zeros(2)
    for batch in strategy.experimental_distribute_dataset(dataset.poem_dataset(sequences, batch_size).dataset):
        totals += [float(x) for x in eval_step(batch)]
    return loss_lib.perplexity(*totals)


def sample_poems(model, vocab, options):
    """A few free poems for TensorBoard, from the same decoder ``write`` uses."""
    from poetry_rnn import constraints, decode

    begins = [c for c in SAMPLE_BEGINS if c in vocab][: options.samples] or [""]
    requests = [constraints.PoemRequest(begin=b, max_len=80) for b in begins]
    poems = decode.generate(model, vocab, requests, temperature=0.8, seed=options.seed,
                            title_conditioned=options.condition == "title")
    return "\n\n".join(p.content for p in poems)


FLAGS = flags.FLAGS


def define_flags():
    defaults = TrainOptions()
    flags.DEFINE_string("data", "data/poems.txt", "A poems.txt file (title:content per line).")
    flags.DEFINE_string("model_dir", "checkpoints/lstm", "Where config, vocabulary, checkpoints and logs go.")
    flags.DEFINE_enum("cell", defaults.cell, ["rnn", "lstm", "gru"], "Recurrent cell.")
    flags.DEFINE_enum("input", defaults.input, ["embedding", "onehot"], "Input features.")
    flags.DEFINE_integer("embed_dim", defaults.embed_dim, "Embedding width (embedding input).")
    flags.DEFINE_integer("units", defaults.units, "Hidden units per recurrent layer.")
    flags.DEFINE_integer("layers", defaults.layers, "Stacked recurrent layers.")
    flags.DEFINE_float("dropout", defaults.dropout, "Dropout on each recurrent layer's output.")
    flags.DEFINE_enum("condition", defaults.condition, ["none", "title"], "Train on BOS title SEP content EOS.")
    flags.DEFINE_integer("min_count", defaults.min_count, "Characters seen fewer times become UNK.")
    flags.DEFINE_integer("max_len", defaults.max_len, "Skip poems with longer content.")
    flags.DEFINE_float("valid_fraction", defaults.valid_fraction, "Share of poems held out for validation.")
    flags.DEFINE_enum("optimizer", defaults.optimizer, list(OPTIMIZERS), "Optimizer.")
    flags.DEFINE_float("learning_rate", defaults.learning_rate, "Learning rate.")
    flags.DEFINE_float("clip_norm", defaults.clip_norm, "Global-norm gradient clipping (0 = off).")
    flags.DEFINE_integer("batch_size", defaults.batch_size, "Poems per batch (global, across replicas).")
    flags.DEFINE_integer("epochs", defaults.epochs, "Epochs in all (a resumed run continues to this).")
    flags.DEFINE_integer("seed", defaults.seed, "Seed for initialisation and data order.")
    flags.DEFINE_integer("max_steps", defaults.max_steps, "Stop after this many steps in all (0 = no limit).")
    flags.DEFINE_integer("checkpoint_every", defaults.checkpoint_every, "Steps between checkpoints.")
    flags.DEFINE_integer("keep_checkpoints", defaults.keep_checkpoints, "Checkpoints kept.")
    flags.DEFINE_integer("samples", defaults.samples, "Sample poems logged per epoch.")
    flags.DEFINE_enum("strategy", defaults.strategy, ["default", "mirrored", "multiworker", "tpu"], "tf.distribute strategy.")
    flags.DEFINE_enum("mixed_precision", defaults.mixed_precision, list(PRECISION_POLICIES), "bf16 on AVX-512 CPUs, fp16 on GPUs.")


def main(argv):
    if len(argv) > 1:
        raise PoetryError(f"unexpected arguments: {' '.join(argv[1:])}")
    names = {f.name for f in dataclasses.fields(TrainOptions)} - {"quiet"}
    options = TrainOptions(**{name: FLAGS[name].value for name in names})
    history = fit(FLAGS.data, FLAGS.model_dir, options)
    if history.interrupted:
        sys.exit(130)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
