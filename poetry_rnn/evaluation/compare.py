"""Compare cells and inputs on one budget: ``python -m poetry_rnn.compare --corpus lyrics``.

    python -m poetry_rnn.compare --corpus lyrics --cells rnn lstm gru --inputs embedding onehot \
        --epochs 10 --out reports/compare-lyrics

Every (cell, input) pair is trained by ``trainer.fit`` with the same options,
data and seed, one after the other, each into ``<out>/logs/<cell>-<input>/``
(a full model dir: config, vocabulary, checkpoints and TensorBoard logs, so
``tensorboard --logdir <out>`` shows all the runs together, and
``write --model_dir`` can use any of them). Then ``compare`` writes:

    <out>/README.md      the table, the chart, samples and the settings
    <out>/loss.png       train (solid) and validation (dashed) loss per epoch
    <out>/results.json   the same numbers, per epoch, for other tools

Validation perplexity is measured on held-out text: the last
``--stream_valid_fraction`` (10 %) of the stream for lyrics, the hash-based
validation split for poems. A configuration that fails is reported in the
table with its error, and the others still run.

``compare(options, train, sampling)`` is the whole thing as a plain
function (``CompareOptions`` holds what the grid is and what it reports);
the entry point ``poetry_rnn.compare`` only maps flags onto it.
"""

import dataclasses
import functools
import gc
import math
import os
import shutil
import statistics
import sys
import time

import keras

from poetry_rnn.generation import drafts, sampler
from poetry_rnn.infra import files, lock
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.infra.fields import option, validate
from poetry_rnn.model import store
from poetry_rnn.model.network import CELLS, INPUTS, ModelConfig
from poetry_rnn.options import SamplingOptions
from poetry_rnn.training import trainer
from poetry_rnn.training.train_options import TrainOptions
from poetry_rnn.verse import poem_request

DEFAULT_PREFIX = {"lyrics": "分开", "poems": "日"}
# compare trains many small models on one budget: its own defaults for TrainOptions' flags.
COMPARE_DEFAULTS = {"corpus": "lyrics", "epochs": 5, "units": 256, "layers": 1, "embed_dim": 128, "batch_size": 32}
LOGS = "logs"  # run folders go under <out>/logs/, which .gitignore keeps out of git


@dataclasses.dataclass
class RunResult:
    """One configuration of the grid: its numbers, or why it failed."""

    cell: str
    input: str
    model_dir: str
    parameters: int = 0
    train_loss: float = math.nan
    train_perplexity: float = math.nan
    valid_perplexity: float = math.nan
    best_valid_perplexity: float = math.nan  # the lowest over epochs (small corpora overfit fast)
    best_valid_epoch: int = 0
    tokens_per_second: float = math.nan  # median over epochs
    wall_seconds: float = math.nan  # the whole fit: data, tracing, training, validation
    history: object = None  # trainer.History
    samples: list = dataclasses.field(default_factory=list)  # (label, text)
    error: str = ""

    @property
    def name(self):
        return f"{self.cell}-{self.input}"

    @property
    def ok(self):
        return not self.error


@dataclasses.dataclass
class Comparison:
    """What ``compare`` wrote, for the caller (and the tests)."""

    runs: list
    table: str  # the Markdown table
    plot_labels: list  # the chart legend's labels, one per plotted run
    readme: str
    chart: str
    results: str


def require_matplotlib():
    """matplotlib (the ``[plots]`` extra), or a one-line PoetryError saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise PoetryError("compare draws its loss curves with matplotlib: pip install 'poetry_rnn[plots]'") from None
    return matplotlib


@dataclasses.dataclass(frozen=True)
class CompareOptions:
    """What compare trains and reports, beside the TrainOptions every run shares."""

    data: str = option(None, "Training text (default data/lyrics.txt or data/poems.txt).")
    cells: list = option(list(CELLS), "Cells to compare, e.g. --cells rnn lstm gru.")
    inputs: list = option(list(INPUTS), "Inputs to compare, e.g. --inputs embedding onehot.")
    out: str = option(None, "Report folder (default reports/compare-<corpus>).")
    overwrite: bool = option(False, "Replace the run folders of an earlier compare in --out.")
    prefix: str = option(None, "Samples start from this (default 分开 for lyrics, 日 for poems).")
    samples: int = option(3, "Sampled texts per run (after one greedy).")
    sample_length: int = option(50, "Characters added after the prefix (lyrics) or most characters (poems).")

    def __post_init__(self):
        validate(self)


def compare(options=None, train=None, sampling=None, command=None, log=None):
    """Train every (cell, input) of ``options`` (CompareOptions) with ``train`` and write the report.

    ``train`` (TrainOptions, default: on the lyrics) is every run's budget, and its ``corpus`` says what
    ``options.data`` is; ``data`` defaults to data/<corpus>.txt and ``out`` to reports/compare-<corpus>.
    ``sampling`` (SamplingOptions) draws the sample texts after one greedy; without a seed of its own it
    takes the training seed.
    """
    options = options or CompareOptions()
    log = log or (lambda *a: print(*a, file=sys.stderr, flush=True))
    require_matplotlib()  # before hours of training, not after
    base = dataclasses.replace(train or TrainOptions(corpus=COMPARE_DEFAULTS["corpus"]), quiet=True)
    corpus = base.corpus
    data = options.data or os.path.join("data", "lyrics.txt" if corpus == "lyrics" else "poems.txt")
    out = options.out or os.path.join("reports", f"compare-{corpus}")
    sampling = sampling or SamplingOptions()
    if sampling.seed is None:
        sampling = dataclasses.replace(sampling, seed=base.seed)
    prefix = DEFAULT_PREFIX.get(corpus, "") if options.prefix is None else options.prefix
    grid = [(cell, kind) for cell in options.cells for kind in options.inputs]
    if not grid:
        raise PoetryError("nothing to compare: give at least one cell and one input")
    runs = [RunResult(cell, kind, os.path.join(out, LOGS, f"{cell}-{kind}")) for cell, kind in grid]
    _clear_previous_runs(runs, options.overwrite)
    os.makedirs(out, exist_ok=True)

    write_samples = functools.partial(_samples, corpus=corpus, prefix=prefix, count=options.samples,
                                      length=options.sample_length, sampling=sampling)
    for i, run in enumerate(runs, 1):
        if not _train_one(run, f"[{i}/{len(runs)}]", base, data, write_samples, log):
            for rest in runs[i:]:
                rest.error = "not run (interrupted)"
            break

    table = markdown_table(runs)
    chart = os.path.join(out, "loss.png")
    labels = plot_losses(runs, chart, title=f"{corpus}: loss per epoch ({base.epochs} epochs, seed {base.seed})")
    readme = os.path.join(out, "README.md")
    files.write_text(readme, _readme(runs, table, data, corpus, base, prefix, sampling.temperature, command))
    results = os.path.join(out, "results.json")
    files.write_text(results, files.finite_json(_results(runs, data, base), indent=2, ensure_ascii=False) + "\n")
    log(f"wrote {readme}, {chart} and {results}")
    return Comparison(runs, table, labels, readme, chart, results)


def _train_one(run, tag, base, data, write_samples, log):
    """Train one configuration of the grid and record it (or its error); False when training was interrupted."""
    log(f"{tag} {run.name}: training {base.epochs} epoch(s) into {run.model_dir}")
    start = time.perf_counter()
    try:
        network = dataclasses.replace(base.model, cell=run.cell, input=run.input)
        history = trainer.fit(data, run.model_dir, dataclasses.replace(base, model=network))
        run.wall_seconds = time.perf_counter() - start
        if history.interrupted:
            run.error = "interrupted"
            log(f"{tag} {run.name}: interrupted; the remaining configurations are not run")
            return False
        _record(run, history)
        try:
            run.samples = write_samples(run.model_dir)
        except Exception as error:  # e.g. a prefix outside this vocabulary: the training itself is fine
            run.samples = [("no samples", describe(error))]
        log(
            f"{tag} {run.name}: train loss {run.train_loss:.3f}, train ppl {run.train_perplexity:.2f}, "
            f"valid ppl {run.valid_perplexity:.2f}, {run.tokens_per_second:,.0f} tokens/s, {run.wall_seconds:.0f}s"
        )
    except Exception as error:  # one bad configuration must not stop the grid
        run.wall_seconds = time.perf_counter() - start
        run.error = describe(error)
        log(f"{tag} {run.name}: FAILED: {run.error}")
    finally:
        _release_memory()
    return True


def describe(error):
    """``Type: message`` on one line; TensorFlow's "in user code:" tracebacks give their last line."""
    text = error.args[0] if len(error.args) == 1 and isinstance(error.args[0], str) else str(error)  # KeyError quotes str()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    message = (lines[-1] if lines and lines[0] == "in user code:" else lines[0]) if lines else ""
    return f"{type(error).__name__}: {message}"[:300]


def _clear_previous_runs(runs, overwrite):
    """Refuse (or with ``overwrite`` remove) run folders left by an earlier compare.

    ``fit`` would otherwise resume them, and a finished run would train no
    more and report nothing. Only model dirs (with config.json) or empty
    folders are removed.
    """
    previous = [run.model_dir for run in runs if os.path.isdir(run.model_dir) and os.listdir(run.model_dir)]
    for folder in previous:
        with lock.hold(folder):  # a folder that another run is training in is refused, never removed
            if not overwrite:
                raise PoetryError(f"{folder} holds an earlier run; use --overwrite (or another --out)")
            if not store.exists(folder):
                raise PoetryError(f"{folder} is not a model directory; not removing it")
            shutil.rmtree(folder)


def _record(run, history):
    run.history = history
    run.parameters = history.parameters
    if history.train_loss:
        run.train_loss = history.train_loss[-1]
        run.train_perplexity = history.train_perplexity[-1]
        run.valid_perplexity = history.valid_perplexity[-1]
        finite = [(p, e) for e, p in enumerate(history.valid_perplexity, 1) if math.isfinite(p)]
        if finite:
            run.best_valid_perplexity, run.best_valid_epoch = min(finite)
        run.tokens_per_second = statistics.median(history.tokens_per_second)


def _samples(model_dir, corpus, prefix, count, length, sampling):
    """Greedy, then ``count`` texts sampled with ``sampling`` from ``prefix``, by the trained model as ``write`` loads it."""
    loaded = store.load(model_dir)
    decoder = sampler.Decoder(loaded.model)
    greedy = dataclasses.replace(sampling, temperature=0.0, top_k=0, top_p=1.0, best_of=1)
    out = []
    for label, how, copies in (("greedy", greedy, 1), (f"T={sampling.temperature:g}", sampling, count)):
        if copies < 1:
            continue
        if corpus == "lyrics":
            texts = drafts.continue_streams(decoder, loaded.vocab, [prefix] * copies, length, how)
        else:
            requests = [poem_request.PoemRequest(begin=prefix, max_len=length)] * copies
            texts = drafts.generate(decoder, loaded.vocab, requests, how)
        out.extend((label, t.content) for t in texts)
    return out


def _release_memory():
    keras.backend.clear_session()
    gc.collect()


def _number(value, spec):
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _duration(seconds):
    if math.isnan(seconds):
        return "–"
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def markdown_table(runs):
    """One row per configuration; a failed one shows its error instead of numbers."""
    rows = [
        "| cell | input | parameters | final train loss | train ppl | valid ppl | best valid ppl (epoch) | tokens/s | wall time | status |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for run in runs:
        status = "ok" if run.ok else "failed: " + run.error.replace("|", "\\|")
        best = f"{run.best_valid_perplexity:.2f} ({run.best_valid_epoch})" if run.best_valid_epoch else "–"
        rows.append(
            f"| {run.cell} | {run.input} | {_number(run.parameters or None, ',')} | {_number(run.train_loss, '.3f')} | "
            f"{_number(run.train_perplexity, '.2f')} | {_number(run.valid_perplexity, '.2f')} | {best} | "
            f"{_number(run.tokens_per_second, ',.0f')} | {_duration(run.wall_seconds)} | {status} |"
        )
    return "\n".join(rows) + "\n"


def plot_losses(runs, path, title="loss per epoch"):
    """Train (solid) and validation (dashed, ln perplexity) loss of every finished run on one chart.

    Returns the legend's labels (one per plotted run), read back from the figure.
    matplotlib is imported here because it is an optional extra (``[plots]``).
    """
    matplotlib = require_matplotlib()
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, axes = plt.subplots(figsize=(9, 5.5), dpi=110)
    try:
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        plotted = [run for run in runs if run.ok and run.history is not None and run.history.train_loss]
        for k, run in enumerate(plotted):
            colour = colours[k % len(colours)]
            epochs = list(range(1, len(run.history.train_loss) + 1))
            axes.plot(epochs, run.history.train_loss, color=colour, marker="o", markersize=3, label=run.name)
            valid = [math.log(p) if p > 0 and math.isfinite(p) else math.nan for p in run.history.valid_perplexity]
            if any(math.isfinite(v) for v in valid):
                axes.plot(epochs, valid, color=colour, linestyle="--", marker="x", markersize=3, label="_nolegend_")
        axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_ylabel("cross-entropy (nats per character)")
        axes.set_title(f"{title}\nsolid: train loss, dashed: validation loss (ln perplexity)")
        axes.grid(alpha=0.3)
        if plotted:
            axes.legend(title="cell-input")
        else:
            axes.text(0.5, 0.5, "no configuration finished", ha="center", va="center", transform=axes.transAxes)
        figure.tight_layout()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with files.atomic_write(path, "wb") as handle:
            figure.savefig(handle, format="png")
        legend = axes.get_legend()
        return [text.get_text() for text in legend.get_texts()] if legend else []
    finally:
        plt.close(figure)


def _settings(base):
    keys = ["epochs", "units", "layers", "embed_dim", "batch_size", "optimizer", "learning_rate", "clip_norm",
            "min_count", "seed", "max_steps"]
    if base.corpus == "lyrics":
        keys += ["sampling", "num_steps", "max_chars", "stream_valid_fraction", "random_offset", "init"]
    else:
        keys += ["valid_fraction", "max_len"]
    network = {f.name for f in dataclasses.fields(ModelConfig)}
    return {k: getattr(base.model if k in network else base, k) for k in keys}


def _readme(runs, table, data, corpus, base, prefix, temperature, command):
    settings = ", ".join(f"`{k}={v}`" for k, v in _settings(base).items())
    held_out = (
        f"the last {base.stream_valid_fraction:.0%} of the stream, read in order with the state carried"
        if corpus == "lyrics" else f"the validation split ({base.valid_fraction:.0%} of the poems, by content hash)"
    )
    lines = [
        f"# Cells and inputs compared on the {corpus}",
        "",
        "Made by:",
        "",
        "```",
        command or f"python -m poetry_rnn.compare --corpus {corpus} --data {data}",
        "```",
        "",
        f"Data: `{data}`. Every configuration had the same budget and seed: {settings}.",
        f"Validation perplexity is measured on held-out text: {held_out}. Tokens/s is the median over epochs",
        "of training throughput; wall time is the whole run (data, tracing, training, validation, checkpoints)",
        "on whatever else the machine was doing at the time. Train perplexity is over the last epoch's batches,",
        "valid perplexity after the last epoch, and best valid perplexity the lowest after any epoch.",
        "",
        table,
        "![loss curves](loss.png)",
        "",
        f"Each run's model dir (checkpoints and TensorBoard logs) is `{LOGS}/<cell>-<input>/` (kept out of git);",
        "`tensorboard --logdir` on this folder shows them together.",
        "",
        f"## Samples (prefix {prefix!r}; greedy, then temperature {temperature:g})",
        "",
    ]
    for run in runs:
        lines.append(f"### {run.name}")
        lines.append("")
        if not run.ok:
            lines += [f"failed: {run.error}", ""]
            continue
        lines += [f"- {label}: `{text.replace(chr(10), ' ')}`" for label, text in run.samples] + [""]
    return "\n".join(lines)


def _results(runs, data, base):
    def clean(value):
        return None if isinstance(value, float) and not math.isfinite(value) else value

    return {
        "data": data,
        "settings": _settings(base),
        "runs": [
            {
                "cell": run.cell,
                "input": run.input,
                "model_dir": run.model_dir,
                "parameters": run.parameters,
                "final_train_loss": clean(run.train_loss),
                "train_perplexity": clean(run.train_perplexity),
                "valid_perplexity": clean(run.valid_perplexity),
                "best_valid_perplexity": clean(run.best_valid_perplexity),
                "best_valid_epoch": run.best_valid_epoch or None,
                "tokens_per_second": clean(run.tokens_per_second),
                "wall_seconds": clean(run.wall_seconds),
                "error": run.error or None,
                "per_epoch": {
                    "train_loss": [clean(x) for x in run.history.train_loss],
                    "train_perplexity": [clean(x) for x in run.history.train_perplexity],
                    "valid_perplexity": [clean(x) for x in run.history.valid_perplexity],
                } if run.history is not None else None,
                "samples": [{"kind": label, "text": text} for label, text in run.samples],
            }
            for run in runs
        ],
    }
