"""The training loop behind ``python -m poetry_rnn.train`` and ``compare``.

The loop is written out (no ``model.fit``) because poems need things Keras'
loop does not give: the masked per-poem loss, perplexity from token totals,
bucketed batches of varying shape through one traced step, resuming in the
middle of an epoch, and sample poems in TensorBoard. It runs under a
``tf.distribute`` strategy (``distribution``), so one code path serves one
CPU and many GPUs.

``fit(data, model_dir, options)`` is the whole training run as a plain
function; the entry point ``train`` only turns flags into ``TrainOptions``,
and ``compare`` calls ``fit`` once per cell. A *lesson* is what
the loop trains on (``lessons.PoemLesson`` for a poems.txt,
``lessons.StreamLesson`` for ``--corpus lyrics``); both give the loop the same
things: the data's vocabulary, the steps (``steps``), each epoch's batches,
validation and sample text.
"""

import dataclasses
import math
import os
import shutil
import signal
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from poetry_rnn.training import distribution, lessons
from poetry_rnn.infra import lock, progress as progress_lib
from poetry_rnn.model import loss as loss_lib, store
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model.network import PoetryModel, added_weights, precision
from poetry_rnn.training.train_options import OPTIMIZERS, PRECISION_POLICIES, TrainOptions


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
    interrupted: int = 0  # the signal (SIGINT, SIGTERM) that stopped the run early and saved it, else 0


class TrainingDiverged(PoetryError):
    """The loss became NaN or infinite; the last good checkpoint stays the latest."""


def fit(data, model_dir, options=None):
    """Train on ``data`` (a poems.txt, or a text stream with ``--corpus lyrics``) into ``model_dir``, resuming if it holds a run.

    The run holds ``model_dir``'s lock throughout (``lock.hold``), so a second
    run on the same folder is refused instead of mixing its checkpoints in.
    """
    options = options or TrainOptions()
    # First: a multi-worker strategy must exist before TensorFlow lists devices (as resolved() does).
    strategy = distribution.make_strategy(options.strategy)
    options = options.resolved()
    check_writable(model_dir)
    with lock.hold(model_dir, chief=distribution.is_chief(strategy)):
        log = make_log(options)
        lesson = (lessons.StreamLesson if options.corpus == "lyrics" else lessons.PoemLesson)(data, options, log)
        lesson.use_vocab(resolve_vocab(lesson.vocab, model_dir, options))
        config = options.model_config(len(lesson.vocab))
        run = start_run(model_dir, config, lesson.vocab, options, strategy, log, init=lesson.initialize)
        if run.chief:
            lesson.record_training_poems(model_dir)
        kernel = f", {options.lstm_kernel} LSTM kernel" if config.cell == "lstm" else ""
        log(f"model: {config.layers}x{config.units} {config.cell}, {config.input} input{kernel}, "
            f"{run.history.parameters:,} parameters" + lesson.describe())
        lesson.build_steps(run, strategy)
        return train_loop(run, options, lesson)


def check_writable(model_dir):
    """Fail before training, not after an epoch, when model_dir cannot be written."""
    try:
        os.makedirs(model_dir, exist_ok=True)
        descriptor, probe = tempfile.mkstemp(prefix=".write_test", dir=model_dir)  # unique: workers may share model_dir
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(b"\0" * 1024 * 1024)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            os.unlink(probe)  # also when the disk is full: leave no megabyte behind
    except OSError as error:
        raise PoetryError(f"cannot write to model directory {model_dir}: {error.strerror}") from None


def resolve_vocab(built, model_dir, options):
    """``built``, or the model dir's own vocabulary when resuming (it must be the same).

    A new run with ``init_from`` takes that model's vocabulary instead (the
    data's unseen characters become UNK), and its network must match.
    """
    if options.init_from:
        config, _, built = store.read_config(options.init_from)
        check_same_network(options, config, built, options.init_from, "use the same --cell, --units, ... as it",
                           may_differ=RETRAINABLE)
    if not store.exists(model_dir):
        return built
    config, _, saved = store.read_config(model_dir)
    if saved != built:
        source = f"--init_from {options.init_from}" if options.init_from else "the data"
        raise PoetryError(
            f"{source} gives a different vocabulary ({len(built)} tokens, fingerprint {built.fingerprint}) "
            f"than {model_dir} ({len(saved)} tokens, fingerprint {saved.fingerprint}); use a new --model_dir"
        )
    check_same_network(options, config, saved, model_dir, "use a new --model_dir")
    return saved


# Settings a run started --init_from another model may change: the same weights carry over
# (fine-tuning an unconditioned model to keywords, or with other dropout); prompt_bag adds
# weights of its own, which start from zero (model.ADDED_BY).
RETRAINABLE = ("condition", "dropout", "variational_dropout", "weight_drop", "prompt_bag")


def freeze_all_but_added(model):
    """Leave only the layers of the weights ``model``'s options add trainable (``train --train_only_new``)."""
    added = added_weights(model.config)
    for layer in model.layers:
        if not all(store.weight_name(w) in added for w in layer.weights):
            layer.trainable = False


def copy_weights(source, model, source_dir):
    """Give ``model`` the weights of ``source`` by name; returns the names only ``model`` has.

    Those must be weights an option of ``model`` adds (``model.ADDED_BY``),
    which keep their zero start; a weight of ``source`` with no place in
    ``model`` is an error rather than dropped.
    """
    given = {store.weight_name(v): v for v in source.weights}
    addable = added_weights(model.config)
    added = []
    for variable in model.weights:
        name = store.weight_name(variable)
        if name in given:
            variable.assign(given.pop(name))
        elif name in addable:
            added.append(name)
        else:
            raise PoetryError(f"--init_from {source_dir} has no weight {name} for this model")
    if given:
        raise PoetryError(f"--init_from {source_dir} has weights this model has no place for "
                          f"({', '.join(sorted(given))}); keep its --prompt_bag")
    return added


def check_same_network(options, config, vocab, model_dir, advice, may_differ=()):
    """The options' network must be the one ``model_dir`` holds (``config``), but for ``may_differ``."""
    wanted = options.model_config(len(vocab))
    diff = ", ".join(f"{k}={v} (saved {getattr(config, k)})" for k, v in wanted.to_dict().items()
                     if getattr(config, k) != v and k not in may_differ)
    if diff:
        raise PoetryError(f"{model_dir} holds a different model: {diff}; {advice}")


def make_log(options):
    return (lambda *a: None) if options.quiet else (lambda *a: print(*a, file=sys.stderr))


@dataclasses.dataclass
class Run:
    """A training run in progress: the model, its optimizer, counters, checkpoints, logs."""

    model: PoetryModel
    optimizer: object
    step: tf.Variable
    epoch: tf.Variable
    batch_in_epoch: tf.Variable
    manager: tf.train.CheckpointManager
    writers: dict
    chief: bool
    scratch: str  # a non-chief worker's throw-away checkpoint folder, else None
    history: History
    log: object


def start_run(model_dir, config, vocab, options, strategy, log, init):
    """Build the model and optimizer, and resume from ``model_dir`` if it holds a run.

    ``init(model)`` (streams: the book's initialisation) runs before the
    restore, so a resumed run's weights come from its checkpoint.
    """
    keras.utils.set_random_seed(options.seed)
    chief = distribution.is_chief(strategy)
    with strategy.scope():
        # Variables stay float32; the loss casts logits to float32 before the softmax.
        with precision(PRECISION_POLICIES[options.mixed_precision]):
            model = PoetryModel(config, lstm_kernel=options.lstm_kernel)
            init(model)
        if options.train_only_new:
            freeze_all_but_added(model)
        optimizer = make_optimizer(options)
        optimizer.build(model.trainable_variables)
    # Host-side counters, outside the strategy: plain variables, not mirrored ones.
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    batch_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="batch_in_epoch")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step, epoch=epoch, batch_in_epoch=batch_in_epoch)
    # Every worker saves (saving may need all of them), but only the chief into
    # model_dir; the others into a scratch folder removed at the end, as in
    # TensorFlow's multi-worker guide. Every worker resumes from the chief's
    # checkpoints, so resuming a multi-worker run needs model_dir on a shared filesystem.
    scratch = None if chief else tempfile.mkdtemp(prefix=f"poetry_rnn_worker{strategy.cluster_resolver.task_id}_")
    latest = store.latest_checkpoint(model_dir)  # a damaged state file is an error, not a silent fresh start
    if chief:
        removed = store.remove_interrupted_saves(model_dir)
        if removed:
            log(f"removed what an interrupted save left behind: {', '.join(removed)}")
    manager = tf.train.CheckpointManager(checkpoint, scratch or store.checkpoint_dir(model_dir), max_to_keep=options.keep_checkpoints)
    if latest:
        # Every object of ours must get its value; extra values (another optimizer's slots) are
        # fine, and expect_partial keeps TF from listing them on stderr at exit.
        store.restore_checkpoint(checkpoint, latest).assert_existing_objects_matched().expect_partial()
        log(f"resumed from {latest}: step {int(step)}, epoch {int(epoch) + 1}, batch {int(batch_in_epoch)}")
    elif options.init_from:
        added = copy_weights(store.load(options.init_from).model, model, options.init_from)
        log(f"started from the weights of {options.init_from}" + (f" (new, from zero: {', '.join(added)})" if added else ""))
    if chief:
        store.save_config(model_dir, config, vocab, options.settings())
    writers = {
        name: tf.summary.create_file_writer(os.path.join(model_dir, store.LOGS, name)) if chief else tf.summary.create_noop_writer()
        for name in ("train", "valid")
    }
    with writers["train"].as_default():
        hparams_api.hparams(recipe(options), trial_id=os.path.basename(os.path.abspath(model_dir)))
    history = History(parameters=model.count_params())
    return Run(model, optimizer, step, epoch, batch_in_epoch, manager, writers, chief, scratch, history, log)


def recipe(options):
    """The run's settings, the network's included, as TensorBoard's HParams dashboard takes them.

    Written to the run's logs, so runs in one log folder can be compared by
    their recipe beside their curves (``tensorboard --logdir checkpoints``).
    """
    settings = {**{f"model.{k}": v for k, v in dataclasses.asdict(options.model).items()}, **options.settings()}
    return {name: value if isinstance(value, (bool, int, float, str)) else str(value)
            for name, value in settings.items()}


def make_optimizer(options):
    """The optimizer; ``global_clipnorm`` rescales all gradients together when their global norm exceeds
    ``clip_norm`` (d2l's grad_clipping, so SGD moves at most lr * clip_norm)."""
    optimizer = OPTIMIZERS[options.optimizer](learning_rate=float(options.learning_rate),
                                              global_clipnorm=options.clip_norm or None)
    if options.mixed_precision == "fp16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


class StopSignals:
    """Ctrl-C or SIGTERM (a scheduler preempting the job) while training: finish the step, save, stop.

    A second signal stops at once: the first restores the previous handlers.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received = 0
        self.previous = {}

    def __enter__(self):
        self.previous = {sig: signal.signal(sig, self.on_signal) for sig in self.SIGNALS}
        return self

    def on_signal(self, signum, _):
        self.received = signum
        self.restore()

    def restore(self):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def __exit__(self, *_):
        self.restore()


def train_loop(run, options, lesson):
    """The epoch and step loop that poems and streams share; returns the History.

    ``lesson.epoch_steps(epoch, skip)`` gives the epoch's number of batches
    and an iterator of step results ``(loss, nll, tokens, positions,
    grad_norm)`` for its batches after the first ``skip``;
    ``lesson.validate()`` the validation perplexity; ``lesson.sample(epoch)``
    sample text for TensorBoard, or None. Checkpoints every
    ``checkpoint_every`` steps and at each epoch end; stops on a non-finite
    loss before the bad weights can be saved; Ctrl-C or SIGTERM finishes the
    step, saves and stops (a second signal stops at once).
    """
    step, epoch, batch_in_epoch, history = run.step, run.epoch, run.batch_in_epoch, run.history

    def stopping():
        return stop.received or (options.max_steps and int(step) >= options.max_steps)

    try:
        with StopSignals() as stop:
            if stopping():  # resumed at --max_steps: not one step more
                run.log(f"stopped at step {int(step)} (--max_steps); the latest checkpoint is {run.manager.latest_checkpoint}")
            while int(epoch) < options.epochs and not stopping():
                e, skip = int(epoch), int(batch_in_epoch)
                batches, results = lesson.epoch_steps(e, skip)
                set_learning_rate(run, options, e, batches)
                progress = None if options.quiet else progress_lib.EpochProgress(batches, e, options.epochs, options.log_every)
                totals = np.zeros(4)  # nll, real tokens, padded positions, per-batch loss sum
                start = time.perf_counter()
                for result in results:
                    loss, nll, tokens, positions, norm = check_finite(result, run, options)
                    step.assign_add(1)
                    batch_in_epoch.assign_add(1)
                    totals += (nll, tokens, positions, loss)
                    rate = totals[1] / (time.perf_counter() - start)
                    write_step_summaries(run, loss, norm, rate)
                    if progress:
                        progress.update(int(step), int(batch_in_epoch), loss, rate)
                    if int(step) % options.checkpoint_every == 0:
                        save_checkpoint(run.manager, int(step))
                    if stopping():
                        break
                    set_learning_rate(run, options, e, batches)
                if stopping():
                    stop_early(run, stop.received)
                    break
                epoch.assign_add(1)
                batch_in_epoch.assign(0)
                save_checkpoint(run.manager, int(step))
                record_epoch(history, totals, time.perf_counter() - start, batches - skip)
                finish_epoch(run, options, lesson, e)
    finally:
        for writer in run.writers.values():
            writer.flush()
        if run.scratch:
            shutil.rmtree(run.scratch, ignore_errors=True)
    history.step = int(step)
    return history


def set_learning_rate(run, options, epoch, batches):
    """The rate for the step about to run (a resumed checkpoint's rate never overrides the flags)."""
    progress = (epoch + int(run.batch_in_epoch) / max(batches, 1)) / options.epochs
    run.optimizer.learning_rate = learning_rate_at(options, progress)


def learning_rate_at(options, progress):
    """The learning rate ``progress`` (0 at the start, 1 at the end) through the run's epochs.

    During the first ``warmup`` share of the run the rate rises linearly
    towards ``learning_rate``; the schedule then runs over what is left.
    """
    if progress < options.warmup:
        return options.learning_rate * progress / options.warmup
    if options.lr_schedule == "constant":
        return options.learning_rate
    progress = (progress - options.warmup) / (1 - options.warmup)
    final = options.learning_rate * options.final_lr_fraction
    return final + 0.5 * (options.learning_rate - final) * (1 + math.cos(math.pi * min(progress, 1.0)))


def check_finite(result, run, options):
    """The step's metrics as floats; TrainingDiverged if the loss or the gradient norm is not finite.

    A non-finite gradient norm has already put NaN into the weights (fp16
    loss scaling skips such steps itself), so it stops the run before the
    next save.
    """
    loss, nll, tokens, positions, norm = (float(x) for x in result)
    loss_ok = math.isfinite(loss) and math.isfinite(nll)
    norm_ok = math.isfinite(norm) or options.mixed_precision == "fp16"
    if not (loss_ok and norm_ok):
        what = f"loss became {loss if not math.isfinite(loss) else nll}" if not loss_ok else f"gradient norm became {norm}"
        raise TrainingDiverged(
            f"{what} at step {int(run.step) + 1}; kept the last good checkpoint "
            f"({run.manager.latest_checkpoint or 'none'}); lower --learning_rate or set --clip_norm"
        )
    return loss, nll, tokens, positions, norm


def write_step_summaries(run, loss, norm, rate):
    with run.writers["train"].as_default(step=int(run.step)):
        tf.summary.scalar("loss", loss)
        tf.summary.scalar("grad_norm", norm)
        tf.summary.scalar("tokens_per_second", rate)
        tf.summary.scalar("learning_rate", float(tf.convert_to_tensor(run.optimizer.learning_rate)))


def stop_early(run, received):
    """Save where a signal or --max_steps stopped the run."""
    save_checkpoint(run.manager, int(run.step))
    run.history.interrupted = received
    if received:
        run.log(f"\ninterrupted at step {int(run.step)}; saved {run.manager.latest_checkpoint}")
    else:
        run.log(f"\nstopped at step {int(run.step)} (--max_steps); saved {run.manager.latest_checkpoint}")


def finish_epoch(run, options, lesson, epoch):
    """Validate, sample, and write the epoch's summaries and its one log line."""
    history = run.history
    valid_ppl = lesson.validate()
    history.valid_perplexity.append(valid_ppl)
    samples = lesson.sample(epoch)
    with run.writers["train"].as_default(step=int(run.step)):
        tf.summary.scalar("perplexity", history.train_perplexity[-1])
        tf.summary.scalar("padding_fraction", history.padding_fraction[-1])
        if samples:
            tf.summary.text("samples", samples, step=int(run.step))
    with run.writers["valid"].as_default(step=int(run.step)):
        tf.summary.scalar("perplexity", valid_ppl)
        tf.summary.scalar("loss", math.log(valid_ppl) if valid_ppl == valid_ppl else valid_ppl)
    run.log(
        f"epoch {epoch + 1}/{options.epochs}: train loss {history.train_loss[-1]:.3f}, "
        f"train ppl {history.train_perplexity[-1]:.2f}, valid ppl {valid_ppl:.2f}, "
        f"{history.tokens_per_second[-1]:.0f} tokens/s, padding {history.padding_fraction[-1]:.1%}"
    )


def save_checkpoint(manager, step):
    """``manager.save``, with a full disk or an unwritable folder as a one-line error.

    TensorFlow names the new checkpoint in the ``checkpoint`` state file only
    after its files are complete, so when a save fails the previous checkpoint
    is still the latest, and still whole.
    """
    try:
        return manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as error:
        reason = store.error_reason(error)
        raise PoetryError(
            f"cannot save a checkpoint at step {step} in {manager.directory}: {reason}; "
            f"the latest checkpoint is still {manager.latest_checkpoint or 'none'}"
        ) from error


def record_epoch(history, totals, elapsed, batches):
    nll, tokens, positions, loss_sum = totals
    history.train_loss.append(loss_sum / max(batches, 1))
    history.train_perplexity.append(loss_lib.perplexity(nll, tokens))
    history.tokens_per_second.append(tokens / elapsed)
    history.padding_fraction.append(1 - tokens / positions if positions else 0.0)
