"""Generated poems beside real ones: rhyme as read, repeats, 5-gram perplexity, distinct-2, copying.

    python benchmarks/poem_quality.py --corpus /work/main/data/poems.txt [--count 1000]
        [--settings 0.8:1.0:1,0.7:0.9:4] [--ngram_weight 0 1] [--rhyme_bonus 0] [--novelty_weight 0]
        [--reuse_penalty 0 1] [--tones] [--real_only] [--out DIR] [--asks one|each]

For each form (七绝 and 五律 with --rhyme, with --tones also with loose 平仄,
and free poems) and each sampling setting ``temperature:top_p:best_of`` it decodes
``--count`` poems with the model (one batched call) and prints, beside the
real poems of that form:

* constraints met (``validator.check_poem``), and the stricter check: each
  rhyming line (and with tones each line) read whole by pypinyin;
* poems with a character 3+ times (real: every poem of that form in the corpus);
* the 5-gram's per-character perplexity (a Kneser-Ney model fitted on the
  training split; real: the validation split's poems of that form), and the ratio;
* distinct-2 over sets as large as the real set (the mean over chunks of the
  generated poems), and lines copied verbatim from the training split;
* free poems: the share of regular poems whose even lines rhyme (中华新韵, 平水韵).

Real Tang 七绝 are also scored under both rhyme schemes. With ``--out`` each
setting's poems are written to a text file there, one per line, to read.

The novelty term of the ranking and the reuse penalty only see the poems
chosen before in the same ask: ``--asks one`` (the default) decodes all ``--count`` poems as one
ask (``write --num 1000``), ``--asks each`` as that many asks of one poem
(a user calling ``write`` again and again), where neither has anything to see.
"""

import argparse
import collections
import itertools
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from poetry_rnn.corpus import reading, split  # noqa: E402
from poetry_rnn.evaluation import ngram, quality  # noqa: E402
from poetry_rnn.generation import drafts, ranking as ranking_lib, sampler  # noqa: E402
from poetry_rnn.model import store  # noqa: E402
from poetry_rnn.verse import forms, poem_request, prosody, validator  # noqa: E402
from poetry_rnn.options import SamplingOptions  # noqa: E402


def distinct_2_at(poems, size):
    """Mean distinct-2 over consecutive chunks of ``size`` poems (comparable across set sizes)."""
    chunks = [poems[i : i + size] for i in range(0, len(poems) - size + 1, size)] or [poems]
    return float(np.mean([quality.distinct_2(chunk) for chunk in chunks]))


def rhyme_rates(contents, scheme):
    """(char-level, heard) even-line rhyme rates of the regular poems among ``contents``."""
    regular = [forms.split_lines(c) for c in contents if quality.consistent_line_length(c)]
    if not regular:
        return float("nan"), float("nan")
    char_level = np.mean([prosody.rhyme_ok(lines, scheme=scheme) for lines in regular])
    heard = np.mean([prosody.heard_rhyme_ok(lines) for lines in regular]) if scheme == "xinyun" else float("nan")
    return float(char_level), float(heard)


def measure(contents, real_size, lm, index):
    score = lm.score(contents)
    return {
        "ngram_ppl": score.perplexity,
        "distinct_2": distinct_2_at(contents, real_size),
        "copied_lines": quality.novelty(contents, index)["copied_lines"],
        "repeat3": quality.repetition(contents),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model_dir", default=store.DEFAULT_MODEL_DIR)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--settings", default="0.8:1.0:1", help="temperature:top_p:best_of, comma-separated")
    parser.add_argument("--ngram_weight", type=float, nargs="*", default=[0.0])
    parser.add_argument("--rhyme_bonus", type=float, default=0.0)
    parser.add_argument("--novelty_weight", type=float, default=0.0)
    parser.add_argument("--line_end_bonus", type=float, default=SamplingOptions.line_end_bonus)
    parser.add_argument("--reuse_penalty", type=float, nargs="*", default=[SamplingOptions.reuse_penalty])
    parser.add_argument("--scheme", default="xinyun", choices=prosody.SCHEME_NAMES)
    parser.add_argument("--forms", default="qijue,wulv,free")
    parser.add_argument("--real_only", action="store_true", help="only the real-poem figures")
    parser.add_argument("--tones", action="store_true", help="also each form with rhyme and loose 平仄")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--asks", default="one", choices=("one", "each"),
                        help="all poems in one ask, or each its own (the novelty term sees only its own ask)")
    parser.add_argument("--out", help="a folder for each setting's poems, one per line")
    args = parser.parse_args()
    if args.out:
        os.makedirs(args.out, exist_ok=True)

    loaded = store.load(args.model_dir)
    poems, _ = reading.read_poems(args.corpus)
    train, valid = split.split_train_valid(poems, loaded.train.get("valid_fraction", 0.02))
    began = time.perf_counter()
    lm = ngram.KneserNey(order=5, vocab=loaded.vocab.chars).fit(p.content for p in train)
    index = quality.TrainingIndex(p.content for p in train)
    print(f"5-gram fitted on {len(train)} training poems in {time.perf_counter() - began:.0f} s")

    by_form = collections.defaultdict(list)
    for p in poems:
        by_form[forms.classify(p.content) or "free"].append(p.content)
    for name in ("qijue", "wulv"):
        contents = by_form[name]
        cells = []
        for scheme in prosody.SCHEME_NAMES:
            char_level, heard = rhyme_rates(contents, scheme)
            cells.append(f"{scheme} {char_level:.1%}" + (f" (heard {heard:.1%})" if scheme == "xinyun" else ""))
        doubles = np.mean([max(collections.Counter(c for c in p if prosody.is_han(c)).values()) == 2 for p in contents])
        print(f"real {name} ({len(contents)} poems): even lines rhyme {', '.join(cells)};"
              f" a character 3+ times {quality.repetition(contents):.1%}; exactly doubles {doubles:.1%}")

    real_sets = {}
    for name in args.forms.split(","):
        real = [p.content for p in valid if (forms.classify(p.content) or "free") == name or name == "free"]
        real_sets[name] = real
        m = measure(real, len(real), lm, index)
        m["repeat3"] = quality.repetition(by_form[name] if name != "free" else [p.content for p in poems])
        rates = {s: rhyme_rates(real, s) for s in prosody.SCHEME_NAMES}
        print(f"real {name} (validation {len(real)}): 5-gram ppl {m['ngram_ppl']:.1f}, distinct-2 {m['distinct_2']:.1%},"
              f" copied lines {m['copied_lines']:.1%}, 3+ repeats (whole corpus) {m['repeat3']:.1%},"
              f" rhyme xinyun {rates['xinyun'][0]:.1%} heard {rates['xinyun'][1]:.1%}, pingshui {rates['pingshui'][0]:.1%}")
        real_sets[name] = (real, m)
    if args.real_only:
        return

    decoder = sampler.Decoder(loaded.model)
    for setting in args.settings.split(","):
        temperature, top_p, best_of = setting.split(":")
        temperature, top_p, best_of = float(temperature), float(top_p), int(best_of)
        for weight, penalty in itertools.product(args.ngram_weight if best_of > 1 else [0.0], args.reuse_penalty):
            ranking = ranking_lib.Ranking(lm if weight else None, weight, args.rhyme_bonus, args.novelty_weight)
            for name in args.forms.split(","):
                real, rm = real_sets[name]
                variants = [("", {})] if name == "free" else [("rhyme", {"rhyme": True})]
                if args.tones and name != "free":
                    variants.append(("rhyme+tones", {"rhyme": True, "tones": "loose"}))
                for label, fields in variants:
                    request = poem_request.PoemRequest(form=name, scheme=args.scheme, max_len=120, **fields)
                    began = time.perf_counter()
                    sampling = SamplingOptions(temperature=temperature, top_p=top_p, best_of=best_of, seed=args.seed,
                                               line_end_bonus=args.line_end_bonus, reuse_penalty=penalty)
                    placement = drafts.Placement.of(args.count, groups=range(args.count) if args.asks == "each" else None)
                    out = drafts.generate(decoder, loaded.vocab, [request] * args.count, sampling, placement, ranking)
                    seconds = time.perf_counter() - began
                    contents = [p.content for p in out if p.ended]
                    m = measure(contents, len(real), lm, index)
                    line = (f"T={temperature} top_p={top_p} best_of={best_of} ngram_weight={weight}"
                            f" rhyme_bonus={args.rhyme_bonus} novelty_weight={args.novelty_weight} line_end_bonus={args.line_end_bonus} reuse_penalty={penalty} asks={args.asks} {name} {label} ({len(contents)} poems, {seconds:.0f} s):"
                            f" 5-gram ppl {m['ngram_ppl']:.1f} ({m['ngram_ppl'] / rm['ngram_ppl']:.2f}x real),"
                            f" distinct-2 {m['distinct_2']:.1%} (real {rm['distinct_2']:.1%}),"
                            f" copied lines {m['copied_lines']:.1%}, 3+ repeats {m['repeat3']:.1%} (real {rm['repeat3']:.1%})")
                    if args.out:
                        stem = f"{name}-{label or 'free'}-T{temperature}-p{top_p}-n{best_of}-ng{weight}-nov{args.novelty_weight}-end{args.line_end_bonus}-reuse{penalty}-{args.asks}"
                        with open(os.path.join(args.out, stem + ".txt"), "w", encoding="utf-8") as f:
                            f.writelines(c + "\n" for c in contents)
                    if name == "free":
                        x, _ = rhyme_rates(contents, "xinyun")
                        ps, _ = rhyme_rates(contents, "pingshui")
                        line += f", even lines rhyme xinyun {x:.1%} pingshui {ps:.1%}"
                    else:
                        valid_share = np.mean([not validator.check_poem(p.content, request) for p in out])
                        heard = np.mean([validator.heard_ok(p.content, request) for p in out])
                        line += f", constraints met {valid_share:.1%}"
                        if args.scheme == "xinyun":
                            line += f", heard (line read whole) {heard:.1%}"
                    print(line, flush=True)


if __name__ == "__main__":
    main()
