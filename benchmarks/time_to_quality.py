"""Time to quality: validation perplexity against wall-clock minutes, from scratch, recipe by recipe.

    python benchmarks/time_to_quality.py --data data/poems.txt --minutes 20            # every recipe
    python benchmarks/time_to_quality.py --minutes 5 --recipes base,cosine_warmup,tied --units 256 --embed_dim 128

Each recipe is a set of ``train`` flags over a base (the first default's
network, LSTM 2x512 with embedding 256, trained as its first stage was: Adam
at 1e-2, constant, dropout 0.1, batch 64, float32). Each lever is tried alone
over cosine_warmup; ``shipped`` is the combination the default model now
trains with (at ``--units`` x 1.5: 768 for the base). Each trains from scratch with the
package's own lesson, step and optimizer (``lessons``, ``steps``,
``trainer.start_run``) for ``--minutes`` of wall-clock time, evaluation time not
counted, nor the first step (which traces the step's graph); a cosine schedule runs over the time budget instead of epochs, so a
recipe with a schedule is annealed when its budget ends. Every ``--every``
minutes it measures the validation perplexity on the first ``--valid_poems``
poems of the validation split (the same poems for every recipe).

Recipes run one after another on the same machine, so a machine shared with
other work can slow one more than another: compare recipes run in the same
call, and read small gaps as noise. Writes ``table.md``, ``curves.json`` and
``curves.png`` to ``--out``.
"""

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from poetry_rnn.training import lessons, trainer
from poetry_rnn.model import network as model_lib  # noqa: E402
from poetry_rnn.training.train_options import TrainOptions  # noqa: E402

BASE = dict(cell="lstm", units=512, layers=2, embed_dim=256, dropout=0.1, batch_size=64, learning_rate=1e-2,
            lr_schedule="constant", clip_norm=5.0, mixed_precision="off")
COSINE = dict(lr_schedule="cosine", warmup=0.05, final_lr_fraction=0.03)  # the schedule every lever is tried with
# name -> (train flags over BASE, what the lever is)
RECIPES = {
    "base": ({}, "the default model's stage 1: Adam 1e-2, constant"),
    "cosine_warmup": (COSINE, "cosine from step 0 over the budget, 5 % linear warm-up"),
    "tied": ({**COSINE, "tie_embeddings": True}, "weight tying (with cosine_warmup)"),
    "bf16": ({**COSINE, "mixed_precision": "bf16"}, "bf16 matmuls (with cosine_warmup)"),
    "batch128": ({**COSINE, "batch_size": 128, "learning_rate": 1.4e-2}, "batch 128, rate x sqrt(2) (with cosine_warmup)"),
    "gru": ({**COSINE, "cell": "gru"}, "GRU (with cosine_warmup)"),
    "ema": ({**COSINE, "ema": 0.99},
            "evaluated with an exponential moving average of the weights, decay 0.99 (with cosine_warmup)"),
    "wide": ({**COSINE, "width": 1.5, "dropout": 0.3},
             "1.5x the units (768 for the base), dropout 0.3 (with cosine_warmup)"),
    "adaptive": ({**COSINE, "adaptive_softmax": "1024,3072"},
                 "exact adaptive softmax, cutoffs 1024,3072 (with cosine_warmup)"),
    "shipped": ({**COSINE, "tie_embeddings": True, "width": 1.5, "dropout": 0.2, "learning_rate": 5e-3,
                 "mixed_precision": "bf16"},
                "the shipped default's recipe: tied, 1.5x the units, dropout 0.2, Adam 5e-3, bf16 (with cosine_warmup)"),
}


class MovingAverage:
    """An exponential moving average of the model's weights, updated after every step (the ``ema`` lever).

    Measured here before it is a training option: evaluation swaps the
    averaged weights in and the trained ones back.
    """

    def __init__(self, model, decay):
        self.model, self.decay = model, decay
        self.shadow = [tf.Variable(v, trainable=False) for v in model.trainable_variables]

    def update(self):
        for average, variable in zip(self.shadow, self.model.trainable_variables):
            average.assign(self.decay * average + (1 - self.decay) * variable)

    def evaluate(self, validate):
        trained = [tf.identity(v) for v in self.model.trainable_variables]
        for variable, average in zip(self.model.trainable_variables, self.shadow):
            variable.assign(average)
        try:
            return validate()
        finally:
            for variable, value in zip(self.model.trainable_variables, trained):
                variable.assign(value)


def train_for(data, settings, minutes, every, valid_poems, log):
    """[(minutes, steps, validation perplexity)] of one recipe trained from scratch for ``minutes``."""
    settings = dict(settings)
    ema = settings.pop("ema", None)
    options = TrainOptions.of(**settings, samples=0, quiet=True, valid_fraction=0.02).resolved()
    strategy = tf.distribute.get_strategy()
    lesson = lessons.PoemLesson(data, options, lambda *a: None)
    lesson.use_vocab(lesson.vocab)
    lesson.valid_seqs = lesson.valid_seqs[:valid_poems]
    with tempfile.TemporaryDirectory(prefix="ttq_") as model_dir:
        config = options.model_config(len(lesson.vocab))
        run = trainer.start_run(model_dir, config, lesson.vocab, options, strategy, lambda *a: None, lesson.initialize)
        lesson.build_steps(run, strategy)
        average = MovingAverage(run.model, ema) if ema else None
        validate = (lambda: average.evaluate(lesson.validate)) if average else lesson.validate
        budget, clock, step, epoch, tokens = minutes * 60, 0.0, 0, 0, 0.0
        curve, next_eval = [], every * 60
        while clock < budget:
            _, results = lesson.epoch_steps(epoch, 0)
            started = time.perf_counter()
            for result in results:
                step += 1
                if average:
                    average.update()
                if step > 1:  # the first step traces the graph: not training time
                    tokens += float(result[2])
                    clock += time.perf_counter() - started
                run.optimizer.learning_rate = trainer.learning_rate_at(options, min(clock / budget, 1.0))
                if clock >= next_eval or clock >= budget:
                    perplexity = validate()
                    curve.append((round(clock / 60, 2), step, perplexity))
                    log(f"  {clock / 60:5.1f} min  step {step:5d}  valid ppl {perplexity:8.2f}  "
                        f"{tokens / clock:,.0f} tokens/s")
                    next_eval += every * 60
                if clock >= budget:
                    break
                started = time.perf_counter()
            epoch += 1
        return curve, tokens / clock, run.history.parameters, 3 * model_lib.matmul_flops(config)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    for name, result in results.items():
        minutes, _, perplexity = zip(*result["curve"])
        ax.plot(minutes, perplexity, marker="o", markersize=3, label=name)
    ax.set_xlabel("training minutes (wall clock, evaluation excluded)")
    ax.set_ylabel("validation perplexity")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)  # beside the curves, not over them
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def table(results, base_name):
    base = results.get(base_name)
    lines = ["| recipe | lever | parameters | training MFLOP/token | tokens/s | steps | final valid ppl | vs " + base_name + " |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        final = r["curve"][-1]
        ratio = f"{final[2] / base['curve'][-1][2]:.3f}" if base else "–"
        lines.append(f"| {name} | {r['lever']} | {r['parameters']:,} | {r['flops_per_token'] / 1e6:.1f} | "
                     f"{r['tokens_per_second']:,.0f} | {final[1]:,} | "
                     f"{final[2]:.1f} | {ratio} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.path.join(REPO, "data", "poems.txt"))
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, of: {', '.join(RECIPES)}")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget per recipe")
    parser.add_argument("--every", type=float, default=2.0, help="minutes between validations")
    parser.add_argument("--valid_poems", type=int, default=400)
    parser.add_argument("--units", type=int, default=BASE["units"], help="the base network's width (a smaller, quicker look)")
    parser.add_argument("--embed_dim", type=int, default=BASE["embed_dim"])
    parser.add_argument("--seed", type=int, default=0, help="initialisation and data order (rerun with another to see the noise)")
    parser.add_argument("--out", default=os.path.join(REPO, "reports", "time_to_quality"))
    args = parser.parse_args()
    names = [n for n in args.recipes.split(",") if n]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        sys.exit(f"error: unknown recipe {unknown[0]!r}; recipes are {', '.join(RECIPES)}")
    base = {**BASE, "units": args.units, "embed_dim": args.embed_dim, "seed": args.seed}
    results = {}
    for name in names:
        overrides, lever = RECIPES[name]
        settings = {**base, **overrides}
        settings["units"] = int(base["units"] * settings.pop("width", 1))
        print(f"{name}: {lever}", flush=True)
        curve, rate, parameters, flops = train_for(args.data, settings, args.minutes, args.every, args.valid_poems,
                                            lambda *a: print(*a, flush=True))
        results[name] = {"lever": lever, "settings": settings, "curve": curve, "tokens_per_second": rate,
                         "parameters": parameters, "flops_per_token": flops}
    os.makedirs(args.out, exist_ok=True)
    meta = {"minutes": args.minutes, "every": args.every, "valid_poems": args.valid_poems, "cpus": os.cpu_count(),
            "command": " ".join(["python", "benchmarks/time_to_quality.py", *sys.argv[1:]])}
    with open(os.path.join(args.out, "curves.json"), "w", encoding="utf-8") as handle:
        json.dump({"meta": meta, "results": results}, handle, indent=1)
    text = table(results, names[0])
    with open(os.path.join(args.out, "table.md"), "w", encoding="utf-8") as handle:
        handle.write(f"`{meta['command']}`: {args.minutes:g} minutes per recipe on {meta['cpus']} CPU cores, validation "
                     f"perplexity on {args.valid_poems} held-out poems.\n\n" + text)
    plot(results, os.path.join(args.out, "curves.png"))
    print(text)


if __name__ == "__main__":
    main()
