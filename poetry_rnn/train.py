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
import functools
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
from absl import flags

from poetry_rnn import cli, corpus, dataset, lock, loss as loss_lib, modeldir, vocab as vocab_lib
from poetry_rnn.errors import PoetryError
from poetry_rnn.model import ModelConfig, PoetryModel
from poetry_rnn.vocab import Vocab

PRECISION_POLICIES = {"off": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
OPTIMIZERS = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
SAMPLE_BEGINS = "日红山夜"
CORPORA = ("poems", "lyrics")
INITS = ("keras", "normal")
LR_SCHEDULES = ("constant", "cosine")
SAMPLE_PREFIXES = ("分开", "不分开", "战争中部队", "想要")  # the lyrics lessons' prefixes


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
    # Streams (--corpus lyrics, the d2l char-RNN lessons; see fit_stream).
    corpus: str = "poems"  # poems (poems.txt) | lyrics (one text stream, lines joined with a space)
    sampling: str = "random"  # lyrics: random windows, zero state per batch | consecutive strips, state carried
    num_steps: int = 35  # lyrics: characters per window (the truncated-BPTT length)
    max_chars: int = 0  # lyrics: use only the first N characters of the text (0 = all; the book: 10000)
    random_offset: bool = True  # lyrics: windows start at a random offset each epoch (False: at 0, as the book)
    init: str = "keras"  # lyrics: keras (the layers' own initialisers) | normal (weights N(0, 0.01^2), biases 0: the book)
    stream_valid_fraction: float = 0.1  # lyrics: the last share of the stream, held out for validation
    # Optimisation.
    optimizer: str = "adam"
    # 1e-2, not the usual 2e-3: with a 6,600-way softmax, Adam at 2e-3 sat on
    # the unigram plateau (validation perplexity 735) for a whole epoch.
    learning_rate: float = 1e-2
    # cosine: anneal from learning_rate to final_lr_fraction * learning_rate
    # over all --epochs (by position in the run, so a resumed run picks up the
    # same curve). A constant 1e-2 left the default model still improving
    # slowly; annealing is what turns that into a lower perplexity.
    lr_schedule: str = "constant"
    final_lr_fraction: float = 0.05
    # A model directory (a run or a shipped compact model) whose weights start
    # a new run: fine-tuning, or more epochs for a model shipped without its
    # optimizer state. Its vocabulary is used, and its network must match.
    init_from: str = ""
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
    interrupted: int = 0  # the signal (SIGINT, SIGTERM) that stopped the run early and saved it, else 0


class TrainingDiverged(PoetryError):
    """The loss became NaN or infinite; the last good checkpoint stays the latest."""


def make_strategy(name):
    """The tf.distribute strategy called ``name``; one per process and name, reused by later runs.

    Two MirroredStrategy objects in one process reuse the same collective
    instance keys and abort each other's all-reduces ("Shape mismatch in the
    collective instance"), and a cluster or TPU can be set up only once, so
    ``fit`` called again in the same process (compare, tests) gets the same one.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    return _make_distributed_strategy(name)


@functools.lru_cache(maxsize=None)
def _make_distributed_strategy(name):
    if name == "mirrored":
        # All GPUs; without GPUs, all logical CPU devices (MirroredStrategy's
        # default would take CPU:0 alone), so it can be tried on one machine.
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy(None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")])
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


def prepare_vocab(poems, model_dir, options):
    """The vocabulary: built from the data, or the model dir's own when resuming."""
    return resolve_vocab(Vocab.build(poems_text(poems, options.condition), options.min_count), model_dir, options)


def resolve_vocab(built, model_dir, options):
    """``built``, or the model dir's own vocabulary when resuming (it must be the same).

    A new run with ``init_from`` takes that model's vocabulary instead (the
    data's unseen characters become UNK), and its network must match.
    """
    if not modeldir.exists(model_dir):
        if not options.init_from:
            return built
        config, _, saved = modeldir.read_config(options.init_from)
        check_same_network(options, config, saved, options.init_from, "use the same --cell, --units, ... as it")
        return saved
    config, _, saved = modeldir.read_config(model_dir)
    if saved != built:
        raise PoetryError(
            f"the data gives a different vocabulary ({len(built)} tokens, fingerprint {built.fingerprint}) "
            f"than {model_dir} ({len(saved)} tokens, fingerprint {saved.fingerprint}); use a new --model_dir"
        )
    check_same_network(options, config, saved, model_dir, "use a new --model_dir")
    return saved


def check_same_network(options, config, vocab, model_dir, advice):
    """The options' network must be the one ``model_dir`` holds (``config``)."""
    wanted = options.model_config(len(vocab))
    if wanted != config:
        diff = ", ".join(f"{k}={v} (saved {getattr(config, k)})" for k, v in wanted.to_dict().items() if getattr(config, k) != v)
        raise PoetryError(f"{model_dir} holds a different model: {diff}; {advice}")


def poems_text(poems, condition):
    for poem in poems:
        yield poem.content
        if condition == "title":
            yield poem.title


def fit(data, model_dir, options=None):
    """Train on a poems.txt file into ``model_dir``, resuming if it holds a run.

    The run holds ``model_dir``'s lock throughout (``lock.hold``), so a second
    run on the same folder is refused instead of mixing its checkpoints in.
    """
    options = options or TrainOptions()
    check_writable(model_dir)
    with lock.hold(model_dir, chief=is_chief(make_strategy(options.strategy))):
        return fit_holding_lock(data, model_dir, options)


def fit_holding_lock(data, model_dir, options):
    if options.optimizer not in OPTIMIZERS:
        raise PoetryError(f"unknown optimizer {options.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if not 0 <= options.valid_fraction < 1:
        raise PoetryError(f"--valid_fraction must be in [0, 1), got {options.valid_fraction}")
    if options.batch_size < 1 or options.epochs < 1 or options.learning_rate <= 0:
        raise PoetryError("--batch_size, --epochs and --learning_rate must be positive")
    if options.corpus not in CORPORA:
        raise PoetryError(f"unknown corpus {options.corpus!r}; choose one of {', '.join(CORPORA)}")
    if options.lr_schedule not in LR_SCHEDULES:
        raise PoetryError(f"unknown --lr_schedule {options.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
    if not 0 <= options.final_lr_fraction <= 1:
        raise PoetryError(f"--final_lr_fraction must be in [0, 1], got {options.final_lr_fraction}")
    if options.corpus == "lyrics":
        return fit_stream(data, model_dir, options)
    poems, stats = corpus.read_poems(data, options.max_len)
    log = make_log(options)
    log(f"{data}: {stats.summary()}")
    vocab = prepare_vocab(poems, model_dir, options)
    config = options.model_config(len(vocab))
    train_poems, valid_poems = dataset.split_train_valid(poems, options.valid_fraction)
    log(f"vocabulary {len(vocab)} tokens; {len(train_poems)} training and {len(valid_poems)} validation poems")
    train_seqs = dataset.encode_poems(train_poems, vocab, options.condition)
    valid_seqs = dataset.encode_poems(valid_poems, vocab, options.condition)

    strategy = make_strategy(options.strategy)
    run = start_run(model_dir, config, vocab, options, strategy, log)
    log(f"model: {config.layers}x{config.units} {config.cell}, {config.input} input, {run.history.parameters:,} parameters")
    train_step, eval_step = make_steps(run.model, run.optimizer, strategy)

    def epoch_steps(epoch, skip):
        batches = dataset.poem_dataset(train_seqs, options.batch_size, dataset.shuffle_seed(options.seed, epoch), skip)
        return batches.batches_per_epoch, (train_step(batch) for batch in distribute(strategy, batches.dataset))

    def validate():
        return evaluate_perplexity(eval_step, strategy, valid_seqs, options.batch_size)

    def sample(epoch):
        return sample_poems(run.model, vocab, options) if options.samples and run.chief else None

    return train_loop(run, options, epoch_steps, validate, sample)


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


def start_run(model_dir, config, vocab, options, strategy, log, init=None):
    """Build the model and optimizer, and resume from ``model_dir`` if it holds a run.

    ``init(model)`` (streams: the book's initialisation) runs before the
    restore, so a resumed run's weights come from its checkpoint.
    """
    keras.utils.set_random_seed(options.seed)
    if options.mixed_precision not in PRECISION_POLICIES:
        raise PoetryError(f"unknown --mixed_precision {options.mixed_precision!r}; choose off, bf16 or fp16")
    # Variables stay float32; the loss casts logits to float32 before the softmax.
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[options.mixed_precision])
    chief = is_chief(strategy)
    with strategy.scope():
        model = PoetryModel(config)
        if init:
            init(model)
        # global_clipnorm rescales all gradients together when their global norm
        # exceeds clip_norm: d2l's grad_clipping, so SGD moves at most lr * clip_norm.
        optimizer = OPTIMIZERS[options.optimizer](
            learning_rate=float(options.learning_rate), global_clipnorm=options.clip_norm or None
        )
        if options.mixed_precision == "fp16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
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
    latest = modeldir.latest_checkpoint(model_dir)  # a damaged state file is an error, not a silent fresh start
    if chief:
        removed = modeldir.remove_interrupted_saves(model_dir)
        if removed:
            log(f"removed what an interrupted save left behind: {', '.join(removed)}")
    manager = tf.train.CheckpointManager(checkpoint, scratch or modeldir.checkpoint_dir(model_dir), max_to_keep=options.keep_checkpoints)
    if latest:
        # Every object of ours must get its value; extra values (another optimizer's slots) are
        # fine, and expect_partial keeps TF from listing them on stderr at exit.
        modeldir.restore_checkpoint(checkpoint, latest).assert_existing_objects_matched().expect_partial()
        log(f"resumed from {latest}: step {int(step)}, epoch {int(epoch) + 1}, batch {int(batch_in_epoch)}")
    elif options.init_from:
        source = modeldir.load(options.init_from).model
        for variable, value in zip(model.weights, source.weights, strict=True):
            variable.assign(value)
        log(f"started from the weights of {options.init_from}")
    if chief:
        modeldir.save_config(model_dir, config, vocab, {k: v for k, v in dataclasses.asdict(options).items() if k != "quiet"})
    writers = {
        name: tf.summary.create_file_writer(os.path.join(model_dir, modeldir.LOGS, name)) if chief else tf.summary.create_noop_writer()
        for name in ("train", "valid")
    }
    history = History(parameters=model.count_params())
    return Run(model, optimizer, step, epoch, batch_in_epoch, manager, writers, chief, scratch, history, log)


def train_loop(run, options, epoch_steps, validate, sample):
    """The epoch and step loop that poems and streams share; returns the History.

    ``epoch_steps(epoch, skip)`` gives the epoch's number of batches and an
    iterator of step results ``(loss, nll, tokens, positions, grad_norm)`` for
    its batches after the first ``skip``; ``validate()`` the validation
    perplexity; ``sample(epoch)`` sample text for TensorBoard, or None.
    Checkpoints every ``checkpoint_every`` steps and at each epoch end; stops
    on a non-finite loss before the bad weights can be saved; Ctrl-C or SIGTERM
    finishes the step, saves and stops (a second signal stops at once).
    """
    step, epoch, batch_in_epoch, history, log = run.step, run.epoch, run.batch_in_epoch, run.history, run.log
    interrupted = {"signal": 0}
    stop_signals = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C; a scheduler preempting the job

    def on_signal(signum, _):
        interrupted["signal"] = signum  # finish this step, save, stop
        for sig in stop_signals:  # a second signal stops at once
            signal.signal(sig, previous_handlers[sig])

    def stopping():
        return interrupted["signal"] or (options.max_steps and int(step) >= options.max_steps)

    previous_handlers = {sig: signal.signal(sig, on_signal) for sig in stop_signals}
    try:
        if stopping():  # resumed at --max_steps: not one step more
            log(f"stopped at step {int(step)} (--max_steps); the latest checkpoint is {run.manager.latest_checkpoint}")
        while int(epoch) < options.epochs and not stopping():
            e, skip = int(epoch), int(batch_in_epoch)
            batches, results = epoch_steps(e, skip)

            def set_learning_rate():  # for the step about to run (a resumed checkpoint's rate never overrides the flags)
                progress = (e + int(batch_in_epoch) / max(batches, 1)) / options.epochs
                run.optimizer.learning_rate = learning_rate_at(options, progress)

            set_learning_rate()
            progress = None if options.quiet else keras.utils.Progbar(batches, stateful_metrics=["loss", "tok/s"])
            totals = np.zeros(4)  # nll, real tokens, padded positions, per-batch loss sum
            start = time.perf_counter()
            for result in results:
                loss, nll, tokens, positions, norm = (float(x) for x in result)
                # A non-finite gradient norm has already put NaN into the weights (fp16 loss
                # scaling skips such steps itself), so it stops the run before the next save.
                norm_ok = math.isfinite(norm) or options.mixed_precision == "fp16"
                if not (math.isfinite(loss) and math.isfinite(nll) and norm_ok):
                    what = (f"loss became {loss if not math.isfinite(loss) else nll}"
                            if not (math.isfinite(loss) and math.isfinite(nll)) else f"gradient norm became {norm}")
                    raise TrainingDiverged(
                        f"{what} at step {int(step) + 1}; kept the last good checkpoint "
                        f"({run.manager.latest_checkpoint or 'none'}); lower --learning_rate or set --clip_norm"
                    )
                step.assign_add(1)
                batch_in_epoch.assign_add(1)
                totals += (nll, tokens, positions, loss)
                rate = totals[1] / (time.perf_counter() - start)
                with run.writers["train"].as_default(step=int(step)):
                    tf.summary.scalar("loss", loss)
                    tf.summary.scalar("grad_norm", norm)
                    tf.summary.scalar("tokens_per_second", rate)
                    tf.summary.scalar("learning_rate", float(tf.convert_to_tensor(run.optimizer.learning_rate)))
                if progress:
                    progress.update(min(int(batch_in_epoch), batches), [("loss", loss), ("tok/s", rate)])
                if int(step) % options.checkpoint_every == 0:
                    save_checkpoint(run.manager, int(step))
                if stopping():
                    break
                set_learning_rate()
            if stopping():
                save_checkpoint(run.manager, int(step))
                history.interrupted = interrupted["signal"]
                if interrupted["signal"]:
                    log(f"\ninterrupted at step {int(step)}; saved {run.manager.latest_checkpoint}")
                else:
                    log(f"\nstopped at step {int(step)} (--max_steps); saved {run.manager.latest_checkpoint}")
                break
            epoch.assign_add(1)
            batch_in_epoch.assign(0)
            save_checkpoint(run.manager, int(step))
            record_epoch(history, totals, time.perf_counter() - start, batches - skip)
            valid_ppl = validate()
            history.valid_perplexity.append(valid_ppl)
            samples = sample(e)
            with run.writers["train"].as_default(step=int(step)):
                tf.summary.scalar("perplexity", history.train_perplexity[-1])
                tf.summary.scalar("padding_fraction", history.padding_fraction[-1])
                if samples:
                    tf.summary.text("samples", samples, step=int(step))
            with run.writers["valid"].as_default(step=int(step)):
                tf.summary.scalar("perplexity", valid_ppl)
                tf.summary.scalar("loss", math.log(valid_ppl) if valid_ppl == valid_ppl else valid_ppl)
            log(
                f"epoch {e + 1}/{options.epochs}: train loss {history.train_loss[-1]:.3f}, "
                f"train ppl {history.train_perplexity[-1]:.2f}, valid ppl {valid_ppl:.2f}, "
                f"{history.tokens_per_second[-1]:.0f} tokens/s, padding {history.padding_fraction[-1]:.1%}"
            )
    finally:
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
        for writer in run.writers.values():
            writer.flush()
        if run.scratch:
            shutil.rmtree(run.scratch, ignore_errors=True)
    history.step = int(step)
    return history


def learning_rate_at(options, progress):
    """The learning rate ``progress`` (0 at the start, 1 at the end) through the run's epochs."""
    if options.lr_schedule == "constant":
        return options.learning_rate
    final = options.learning_rate * options.final_lr_fraction
    return final + 0.5 * (options.learning_rate - final) * (1 + math.cos(math.pi * min(progress, 1.0)))


def save_checkpoint(manager, step):
    """``manager.save``, with a full disk or an unwritable folder as a one-line error.

    TensorFlow names the new checkpoint in the ``checkpoint`` state file only
    after its files are complete, so when a save fails the previous checkpoint
    is still the latest, and still whole.
    """
    try:
        return manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as error:
        reason = modeldir.error_reason(error)
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


def batch_signature(strategy):
    """The input signature of one (distributed) batch of ``(inputs, targets, lengths)``.

    Every dimension is unknown, so a step traces once for all batch shapes;
    under a multi-replica strategy the batch is a PerReplica value, whose spec
    comes from distributing a probe dataset with the same structure.
    """
    probe = tf.data.Dataset.range(1).map(
        lambda i: (tf.zeros([i + 1, i + 1], tf.int32), tf.zeros([i + 1, i + 1], tf.int32), tf.zeros([i + 1], tf.int32))
    )
    return distribute(strategy, probe).element_spec


def distribute(strategy, ds):
    """``ds`` split across the strategy's replicas (and workers: by batch, not by file).

    Our datasets are built from in-memory tensors, so the default FILE
    auto-sharding cannot apply; DATA sharding gives each worker its part of
    every global batch.
    """
    if strategy.num_replicas_in_sync == 1 and not getattr(strategy, "cluster_resolver", None):
        return ds
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(ds.with_options(options))


def aggregate_gradients_before_clipping(optimizer):
    """Let the train step sum the replicas' gradients itself, before the optimizer sees them.

    Keras 3's optimizer clips (``global_clipnorm``) each replica's partial
    gradient and only then all-reduces, so under several replicas the clip
    would apply to the wrong vector. The train step all-reduces instead and
    the optimizer's own (second) all-reduce is switched off, so clipping
    applies to the global gradient, as on one device.
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer wraps one
    if not hasattr(inner, "_all_reduce_sum_gradients"):
        raise PoetryError(f"this Keras ({keras.__version__}) optimizer has no _all_reduce_sum_gradients to replace")
    inner._all_reduce_sum_gradients = lambda grads_and_vars: list(grads_and_vars)


def make_steps(model, optimizer, strategy):
    """The distributed train and eval steps, each traced once for all batch shapes.

    With several replicas the global batch is split unevenly (5 poems on 2
    replicas: 3 + 2, 1 poem: 1 + 0), so the loss is each replica's sum over
    the *global* poem count (all-reduced), and the gradients are summed over
    replicas before clipping: the update equals one device's on the whole batch.
    """
    spec = batch_signature(strategy)
    replicas = strategy.num_replicas_in_sync
    if replicas > 1:
        aggregate_gradients_before_clipping(optimizer)

    def replica_train(inputs, targets, lengths):
        context = tf.distribute.get_replica_context()
        poems = tf.cast(tf.shape(lengths)[0], tf.float32)
        if replicas > 1:
            poems = context.all_reduce(tf.distribute.ReduceOp.SUM, poems)
        with tf.GradientTape() as tape:
            logits, _ = model(inputs, training=True)
            per_poem, nll, tokens = loss_lib.masked_poem_loss(targets, logits, lengths)
            loss = tf.math.divide_no_nan(tf.reduce_sum(per_poem), poems)  # this replica's share of the global mean
            scaled = optimizer.scale_loss(loss)  # fp16 loss scaling; identity otherwise
        variables = model.trainable_variables
        grads = tape.gradient(scaled, variables)
        if replicas > 1:
            grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
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

    @tf.function(input_signature=[spec], autograph=False)
    def train_step(batch):
        return reduce(strategy.run(replica_train, args=batch), means=(4,))

    @tf.function(input_signature=[spec], autograph=False)
    def eval_step(batch):
        return reduce(strategy.run(replica_eval, args=batch))

    return train_step, eval_step


def evaluate_perplexity(eval_step, strategy, sequences, batch_size):
    """exp(total NLL / real tokens) over ``sequences``, in file order."""
    if not sequences:
        return float("nan")
    totals = np.zeros(2)
    for batch in distribute(strategy, dataset.poem_dataset(sequences, batch_size).dataset):
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


def fit_stream(data, model_dir, options):
    """``fit`` for ``--corpus lyrics``: the d2l char-RNN lessons on one text stream.

    The text (non-empty lines joined with a space; only its first
    ``max_chars`` characters if set) is one index stream, and its last
    ``stream_valid_fraction`` is held out. ``random`` sampling starts every
    batch from zero states; ``consecutive`` sampling feeds each batch's final
    states to the next with the gradient stopped between them (truncated
    BPTT), and starts from zeros at each epoch. The loss is the plain token
    mean (no padding in a stream). One device only: the carried state makes
    this a sequential loop. Resuming works by epoch: a run stopped inside an
    epoch rebuilds that epoch's batches from (seed, epoch) and goes on at the
    next batch, with zero states (consecutive sampling loses its carry there).
    """
    from poetry_rnn import decode

    if options.sampling not in dataset.SAMPLINGS:
        raise PoetryError(f"unknown sampling {options.sampling!r}; choose one of {', '.join(dataset.SAMPLINGS)}")
    if options.num_steps < 1 or options.max_chars < 0:
        raise PoetryError("--num_steps must be positive and --max_chars at least 0")
    if not 0 <= options.stream_valid_fraction < 1:
        raise PoetryError(f"--stream_valid_fraction must be in [0, 1), got {options.stream_valid_fraction}")
    if options.strategy != "default":
        raise PoetryError("--corpus lyrics trains on one device (the state is carried from batch to batch); use --strategy default")
    if options.condition != "none":
        raise PoetryError("--condition title needs poems with titles; a lyrics stream has none")
    if options.init not in INITS:
        raise PoetryError(f"unknown --init {options.init!r}; choose one of {', '.join(INITS)}")
    log = make_log(options)
    text = corpus.read_stream(data)
    whole = len(text)
    text = text[: options.max_chars or None]
    vocab = resolve_vocab(Vocab.build([text], options.min_count), model_dir, options)
    ids = np.array(vocab.encode(text), np.int32)
    train_ids, valid_ids = dataset.split_stream(ids, options.stream_valid_fraction)
    log(
        f"{data}: {len(text):,} characters" + (f" (the first {len(text):,} of {whole:,})" if len(text) < whole else "")
        + f"; vocabulary {len(vocab)} tokens (min_count {options.min_count}, {np.mean(ids == vocab_lib.UNK):.2%} UNK); "
        f"{len(train_ids):,} training and {len(valid_ids):,} held-out characters"
    )
    config = options.model_config(len(vocab))
    run = start_run(model_dir, config, vocab, options, tf.distribute.get_strategy(), log,
                    init=lambda model: initialize(model, options.init, options.seed))
    log(
        f"model: {config.layers}x{config.units} {config.cell}, {config.input} input, {run.history.parameters:,} parameters; "
        f"{options.sampling} sampling{'' if options.random_offset else ' (windows at offset 0 every epoch)'}, "
        f"batches of {options.batch_size} x {options.num_steps} characters, {options.init} initialisation"
    )
    train_step, eval_step = make_stream_steps(run.model, run.optimizer)
    zeros = run.model.initial_states(options.batch_size)
    decoder = decode.Decoder(run.model) if options.samples else None

    def epoch_steps(epoch, skip):
        batches = dataset.stream_epoch(train_ids, options.batch_size, options.num_steps, options.sampling, options.seed, epoch,
                                       options.random_offset)
        if not batches:
            raise PoetryError(
                f"the training stream ({len(train_ids):,} characters) is too short for one batch of "
                f"--batch_size {options.batch_size} windows of --num_steps {options.num_steps}"
            )
        # A stream has no padding: every position is a real token.
        steps = run_stream_batches(train_step, batches[skip:], options.sampling, zeros)
        return len(batches), ((loss, nll, tokens, tokens, norm) for (loss, nll, tokens, norm), _, _ in steps)

    def validate():
        return evaluate_stream(eval_step, run.model, valid_ids, options.batch_size, options.num_steps)

    def sample(epoch):
        if decoder is None:
            return None
        samples = sample_streams(run.model, vocab, options, decoder)
        if (epoch + 1) % 50 == 0 or epoch + 1 == options.epochs:
            log(" - " + samples.replace("\n\n", "\n - "))  # greedy, like d2l's prediction every 50 epochs
        return samples

    return train_loop(run, options, epoch_steps, validate, sample)


def initialize(model, init, seed):
    """``normal``: every weight N(0, 0.01^2) and every bias 0, as the d2l scratch RNNs start.

    With SGD at lr 100 and clip 0.01 every step has length 1.0, so where the
    weights start matters: from Keras' initialisers (orthogonal recurrent
    kernels, Glorot) the book's 250 epochs reach a perplexity about twice
    the book's; from the book's small normal weights they reproduce it.
    """
    if init == "keras":
        return
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        value = np.zeros(shape) if variable.path.endswith("bias") else rng.normal(0.0, 0.01, shape)
        variable.assign(value.astype(variable.dtype))


def run_stream_batches(train_step, batches, sampling, zeros):
    """Run ``train_step`` over ``batches``; yield (metrics as floats, initial states, final states).

    ``random`` sampling gives every batch ``zeros``; ``consecutive`` gives each
    batch the previous batch's final states (the step stops their gradient).
    """
    states = zeros
    for inputs, targets in batches:
        if sampling != "consecutive":
            states = zeros
        *metrics, final = train_step(inputs, targets, states)
        yield tuple(float(m) for m in metrics), states, final
        states = final


def state_signature(model):
    """The TensorSpec structure of ``model.initial_states``: per layer (h,) or (h, c)."""
    spec = tf.TensorSpec([None, model.config.units], model.compute_dtype)
    return tuple((spec,) * model.states_per_layer for _ in model.rnns)


def stream_forward(model, inputs, targets, states, training):
    """(mean loss, total NLL, tokens, final states) of one stream batch from ``states``.

    The incoming states are constants here (``tf.stop_gradient``): the
    gradient of this batch's loss never reaches the batch they came from.
    Across two ``tf.function`` calls it could not anyway; this says so.
    """
    states = tf.nest.map_structure(tf.stop_gradient, states)
    logits, final = model(inputs, states, training=training)
    per_window, nll, tokens = loss_lib.stream_loss(targets, logits)
    return tf.reduce_mean(per_window), nll, tokens, final


def make_stream_steps(model, optimizer):
    """Single-device train and eval steps for streams; each traced once (any batch, any length)."""
    ids = tf.TensorSpec([None, None], tf.int32)
    signature = [ids, ids, state_signature(model)]

    @tf.function(input_signature=signature, autograph=False)
    def train_step(inputs, targets, states):
        with tf.GradientTape() as tape:
            loss, nll, tokens, final = stream_forward(model, inputs, targets, states, training=True)
            scaled = optimizer.scale_loss(loss)
        variables = model.trainable_variables
        grads = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss, nll, tokens, tf.linalg.global_norm(grads), final

    @tf.function(input_signature=signature, autograph=False)
    def eval_step(inputs, targets, states):
        _, nll, tokens, final = stream_forward(model, inputs, targets, states, training=False)
        return nll, tokens, final

    return train_step, eval_step


def evaluate_stream(eval_step, model, indices, batch_size, num_steps):
    """Perplexity of held-out text read in order, the state carried from window to window."""
    batches = dataset.eval_strips(indices, batch_size, num_steps)
    if not batches:
        return float("nan")
    states = model.initial_states(batches[0][0].shape[0])
    totals = np.zeros(2)
    for inputs, targets in batches:
        nll, tokens, states = eval_step(inputs, targets, states)
        totals += (float(nll), float(tokens))
    return loss_lib.perplexity(*totals)


def sample_streams(model, vocab, options, decoder=None, length=50):
    """Greedy continuations of the lessons' prefixes (those the vocabulary has), as d2l prints them."""
    from poetry_rnn import decode

    prefixes = [p for p in SAMPLE_PREFIXES if all(c in vocab for c in p)][: max(options.samples, 1)]
    prefixes = prefixes or [c for c in vocab.chars if c.strip()][:1]
    texts = decode.continue_streams(model, vocab, prefixes, length, temperature=0.0, seed=options.seed, decoder=decoder)
    return "\n\n".join(t.content for t in texts)


FLAGS = flags.FLAGS


def define_flags():
    defaults = TrainOptions()
    flags.DEFINE_string("data", None, "A poems.txt file (title:content per line), or with --corpus lyrics a text file "
                        "(default data/poems.txt, or data/lyrics.txt with --corpus lyrics).")
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
    flags.DEFINE_enum("lr_schedule", defaults.lr_schedule, list(LR_SCHEDULES),
                      "constant, or cosine: anneal to --final_lr_fraction x --learning_rate over all --epochs.")
    flags.DEFINE_float("final_lr_fraction", defaults.final_lr_fraction, "cosine: the last learning rate, as a share of the first.")
    flags.DEFINE_string("init_from", defaults.init_from,
                        "Start a new run from this model directory's weights and vocabulary (e.g. checkpoints/default).")
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
    flags.DEFINE_enum("corpus", defaults.corpus, list(CORPORA), "poems: a poems.txt; lyrics: one text stream (the d2l lessons).")
    flags.DEFINE_enum("sampling", defaults.sampling, list(dataset.SAMPLINGS),
                      "Lyrics: random windows (zero state per batch) or consecutive strips (state carried).")
    flags.DEFINE_integer("num_steps", defaults.num_steps, "Lyrics: characters per window (truncated BPTT length).")
    flags.DEFINE_integer("max_chars", defaults.max_chars, "Lyrics: only the first N characters (0 = all; d2l: 10000).")
    flags.DEFINE_enum("init", defaults.init, list(INITS), "Lyrics: keras initialisers, or normal: N(0, 0.01^2) weights, 0 biases (the book).")
    flags.DEFINE_bool("random_offset", defaults.random_offset,
                      "Lyrics: start each epoch's windows at a random offset (--norandom_offset: at 0 every epoch, as the book).")
    flags.DEFINE_float("stream_valid_fraction", defaults.stream_valid_fraction, "Lyrics: the last share of the stream held out.")


def main(argv):
    cli.refuse_arguments(argv)
    names = {f.name for f in dataclasses.fields(TrainOptions)} - {"quiet"}
    options = TrainOptions(**{name: FLAGS[name].value for name in names})
    data = FLAGS.data or os.path.join("data", "lyrics.txt" if options.corpus == "lyrics" else "poems.txt")
    history = fit(data, FLAGS.model_dir, options)
    if history.interrupted:
        sys.exit(128 + history.interrupted)  # 130 after Ctrl-C, 143 after SIGTERM, as shells report them


if __name__ == "__main__":
    define_flags()
    cli.run(main)
