"""Time to quality: validation perplexity against wall-clock minutes, from scratch, recipe by recipe.

    python benchmarks/time_to_quality.py --data data/poems.txt --minutes 20            # every recipe
    python benchmarks/time_to_quality.py --minutes 5 --recipes base,cosine_warmup,tied --units 256 --embed_dim 128
    python benchmarks/time_to_quality.py --minutes 20 --every 4 --seeds 0,1 --out reports/time_to_quality_full \
        --recipes shipped,shipped_1024,shipped_3layers,shipped_variational,shipped_weightdrop,shipped_adaptive,shipped_batch128,shipped_ema

Each recipe is a set of ``train`` flags over a base (the first default's
network, LSTM 2x512 with embedding 256, trained as its first stage was: Adam
at 1e-2, constant, dropout 0.1, batch 64, float32). Each lever is tried alone
over cosine_warmup; ``shipped`` is the combination the default model now
trains with (at ``--units`` x 1.5: 768 for the base), and each ``shipped_*``
recipe is one lever over it at full size. Each trains from scratch with the
package's own lesson, step and optimizer (``lessons``, ``steps``,
``trainer.start_run``) for ``--minutes`` of wall-clock time, evaluation time not
counted, nor the first step (which traces the step's graph); a cosine schedule runs over the time budget instead of epochs, so a
recipe with a schedule is annealed when its budget ends. Every ``--every``
minutes it measures the validation perplexity on the first ``--valid_poems``
poems of the validation split (the same poems for every recipe).

Recipes run one after another on the same machine, so a machine shared with
other work can slow one more than another: compare recipes run in the same
call, and read small gaps as noise; ``--seeds`` shows how far one seed moves a
recipe. Writes ``table.md``, ``curves.json`` and ``curves.png`` to ``--out``
after every run; a later call into the same ``--out`` keeps those runs and
adds the missing ones, so a sweep longer than a session goes on in parts.
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
SHIPPED = {**COSINE, "tie_embeddings": True, "width": 1.5, "dropout": 0.2, "learning_rate": 5e-3,
           "mixed_precision": "bf16"}
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
    "shipped": (SHIPPED, "the shipped default's recipe: tied, 1.5x the units, dropout 0.2, Adam 5e-3, bf16 "
                         "(with cosine_warmup)"),
    # Full size: each lever alone over the shipped recipe (issue 28's sweep).
    "shipped_1024": ({**SHIPPED, "width": 2.0}, "shipped, 2x the units (1024 for the base)"),
    "shipped_3layers": ({**SHIPPED, "layers": 3}, "shipped, three recurrent layers"),
    "shipped_variational": ({**SHIPPED, "variational_dropout": True}, "shipped, one dropout mask per poem"),
    "shipped_weightdrop": ({**SHIPPED, "weight_drop": 0.25}, "shipped, weight drop 0.25 on the recurrent kernels"),
    "shipped_adaptive": ({**{k: v for k, v in SHIPPED.items() if k != "tie_embeddings"},
                          "adaptive_softmax": "1024,3072"}, "shipped, adaptive softmax 1024,3072 in place of tying"),
    "shipped_batch128": ({**SHIPPED, "batch_size": 128, "learning_rate": 7e-3}, "shipped, batch 128, rate x sqrt(2)"),
    "shipped_ema": ({**SHIPPED, "ema": 0.99}, "shipped, evaluated with a moving average of the weights (0.99)"),
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
    for index, (name, result) in enumerate(results.items()):
        colour = f"C{index % 10}"
        for number, (seed, run) in enumerate(sorted(result["runs"].items())):
            minutes, _, perplexity = zip(*run["curve"])
            ax.plot(minutes, perplexity, marker="o", markersize=3, color=colour, linestyle=("-", "--", ":")[number % 3],
                    label=f"{name} (seed {seed})")
    ax.set_xlabel("training minutes (wall clock, evaluation excluded)")
    ax.set_ylabel("validation perplexity")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)  # beside the curves, not over them
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def final_perplexity(result):
    """The mean over seeds of each run's last validation perplexity."""
    finals = [run["curve"][-1][2] for run in result["runs"].values()]
    return sum(finals) / len(finals)


def table(results, base_name):
    base = results.get(base_name)
    lines = ["| recipe | lever | parameters | training MFLOP/token | tokens/s | steps | final valid ppl, per seed | "
             "mean | vs " + base_name + " |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        runs = [r["runs"][seed] for seed in sorted(r["runs"])]
        per_seed = " / ".join(f"{run['curve'][-1][2]:.1f} (s{seed})" for seed, run in sorted(r["runs"].items()))
        rate = sum(run["tokens_per_second"] for run in runs) / len(runs)
        steps = " / ".join(f"{run['curve'][-1][1]:,}" for run in runs)
        ratio = f"{final_perplexity(r) / final_perplexity(base):.3f}" if base else "–"
        lines.append(f"| {name} | {r['lever']} | {r['parameters']:,} | {r['flops_per_token'] / 1e6:.1f} | "
                     f"{rate:,.0f} | {steps} | {per_seed} | {final_perplexity(r):.1f} | {ratio} |")
    return "\n".join(lines) + "\n"


def write_report(results, meta, out):
    with open(os.path.join(out, "curves.json"), "w", encoding="utf-8") as handle:
        json.dump({"meta": meta, "results": results}, handle, indent=1)
    with open(os.path.join(out, "table.md"), "w", encoding="utf-8") as handle:
        handle.write(f"`{meta['command']}`: {meta['minutes']:g} minutes per recipe and seed on {meta['cpus']} CPU "
                     f"cores ({meta['cpu']}), validation perplexity on {meta['valid_poems']} held-out poems. "
                     "Runs kept from earlier calls into the same folder are included.\n\n"
                     + table(results, next(iter(results))))
    plot(results, os.path.join(out, "curves.png"))


def cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.path.join(REPO, "data", "poems.txt"))
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, of: {', '.join(RECIPES)}")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget per recipe")
    parser.add_argument("--every", type=float, default=2.0, help="minutes between validations")
    parser.add_argument("--valid_poems", type=int, default=400)
    parser.add_argument("--units", type=int, default=BASE["units"], help="the base network's width (a smaller, quicker look)")
    parser.add_argument("--embed_dim", type=int, default=BASE["embed_dim"])
    parser.add_argument("--seeds", default="0", help="comma-separated: each recipe runs once per seed (initialisation "
                                                      "and data order), to see the noise")
    parser.add_argument("--out", default=os.path.join(REPO, "reports", "time_to_quality"),
                        help="where the report goes; runs already in its curves.json are kept, not run again, so a "
                             "sweep can go on over several calls")
    args = parser.parse_args()
    names = [n for n in args.recipes.split(",") if n]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        sys.exit(f"error: unknown recipe {unknown[0]!r}; recipes are {', '.join(RECIPES)}")
    seeds = [int(seed) for seed in args.seeds.split(",") if seed]
    meta = {"minutes": args.minutes, "every": args.every, "valid_poems": args.valid_poems, "cpus": os.cpu_count(),
            "cpu": cpu_name(), "command": " ".join(["python", "benchmarks/time_to_quality.py", *sys.argv[1:]])}
    os.makedirs(args.out, exist_ok=True)
    saved = os.path.join(args.out, "curves.json")
    results = {}
    if os.path.exists(saved):
        with open(saved, encoding="utf-8") as handle:
            earlier = json.load(handle)
        if (earlier["meta"]["minutes"], earlier["meta"]["valid_poems"]) != (args.minutes, args.valid_poems):
            sys.exit(f"error: {saved} holds runs of {earlier['meta']['minutes']:g} minutes on "
                     f"{earlier['meta']['valid_poems']} poems; use those settings or another --out")
        results = earlier["results"]
    for seed in seeds:
        for name in names:
            if str(seed) in results.get(name, {}).get("runs", {}):
                print(f"{name}, seed {seed}: kept from {saved}", flush=True)
                continue
            overrides, lever = RECIPES[name]
            settings = {**BASE, "units": args.units, "embed_dim": args.embed_dim, **overrides}
            settings["units"] = int(args.units * settings.pop("width", 1))
            print(f"{name}, seed {seed}: {lever}", flush=True)
            curve, rate, parameters, flops = train_for(args.data, {**settings, "seed": seed}, args.minutes, args.every,
                                                       args.valid_poems, lambda *a: print(*a, flush=True))
            entry = results.setdefault(name, {"lever": lever, "settings": settings, "parameters": parameters,
                                              "flops_per_token": flops, "runs": {}})
            entry["runs"][str(seed)] = {"curve": curve, "tokens_per_second": rate}
            write_report(results, meta, args.out)  # after every run, so a stopped sweep keeps what it finished


if __name__ == "__main__":
    main()
