"""Measure a model honestly: ``python -m poetry_rnn.evaluate``.

Three questions, each answered with a human or statistical reference beside
it, so no figure stands alone:

* **Perplexity** per character (punctuation and EOS included) on any
  poems.txt file, batched; characters outside the model's vocabulary are
  predicted as UNK and counted separately. With a corpus: on both held-out
  halves, and on the held-out poems that share no line with a training poem
  (what a near-duplicate cannot help with).
* **A baseline to beat**: an interpolated Kneser-Ney character n-gram model
  (``ngram``) trained on the same training split and scored on the same file.
* **Sample quality** of N generated poems (free, and in a form with the
  requested rhyme/tones): form validity, even-line rhyme rate, 平仄
  agreement, novelty, repetition, distinct-2 (``quality``, ``prosody``), and
  the same measures for real poems of the corpus in the same form.

Writes ``report.md`` (what the README quotes) and ``report.json`` (every
figure) to ``--out``.
"""

import dataclasses
import math
import os
import sys
import time

import numpy as np
import tensorflow as tf

from poetry_rnn.corpus import split
from poetry_rnn import poet as poet_lib
from poetry_rnn.corpus import reading
from poetry_rnn.evaluation import ngram, quality
from poetry_rnn.infra import files
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model import fast_lstm, loss as loss_lib, store
from poetry_rnn.model import vocab as vocab_lib
from poetry_rnn.options import PoemOptions, SamplingOptions
from poetry_rnn.training import dataset, steps
from poetry_rnn.training.train_options import TrainOptions
from poetry_rnn.verse import cipai, forms, poem_request, prosody, tone_patterns, validator

# The request fields a sample report passes to the facade (the rest stay at their defaults).
SAMPLE_FIELDS = ("form", "rhyme", "rhyme_loose", "first_line_rhymes", "scheme", "allow_repeats", "tones", "tone_start",
                 "max_len", "cipai", "ci_rhyme")

DEFAULT_SAMPLING = SamplingOptions(seed=0)  # a report is reproducible unless asked otherwise


def sequence_nll(model, sequences, batch_size=128):
    """(total NLL, predicted tokens) of encoded poems, by training's own evaluation step."""
    strategy = tf.distribute.get_strategy()
    model.lstm_kernel = fast_lstm.default_kernel()  # whole sequences: the faster kernel for this machine
    return steps.poem_totals(steps.make_eval_step(model, strategy), strategy, sequences, batch_size)


PROMPT_SEED = 0  # the prompts a keywords model is scored with: drawn as in training, the same every run


def perplexity_report(loaded, poems, batch_size=128, prompted=False):
    """Model perplexity on ``poems`` and how many characters it could not know.

    A keywords model reads each poem unprompted (as it writes freely), or
    with ``prompted`` as it trained: the prompt drawn by ``dataset.draw_prompt``
    (with PROMPT_SEED), never scored. A model that uses its prompt scores
    lower prompted than unprompted, since the prompt is the poem's own.
    """
    rng = np.random.default_rng(PROMPT_SEED) if prompted else None
    sequences = dataset.encode_poems(poems, loaded.vocab, rng=rng, **loaded.config.prompt_reading)
    nll, tokens = sequence_nll(loaded.model, sequences, batch_size)
    unknown = sum(loaded.vocab.encode(p.content).count(vocab_lib.UNK) for p in poems)  # scored ones: prompts aside
    return {"poems": len(poems), "tokens": int(tokens), "unknown": unknown, "perplexity": loss_lib.perplexity(nll, tokens)}


def fit_ngram(train_poems, vocab, order=5):
    """The Kneser-Ney yardstick on the model's training split and vocabulary, and its fitting time."""
    started = time.perf_counter()
    model = ngram.KneserNey(order=order, vocab=vocab.chars).fit(p.content for p in train_poems)
    return model, round(time.perf_counter() - started, 1)


def ngram_report(fitted, poems):
    """The fitted n-gram's perplexity on ``poems`` (content and EOS, as the RNN is scored)."""
    model, seconds = fitted
    score = model.score(p.content for p in poems)
    return {"order": model.order, "tokens": score.tokens, "unknown": score.unknown, "perplexity": score.perplexity,
            "fit_seconds": seconds}


def split_report(loaded, poems, fitted=None):
    """Perplexity of the model on ``poems``, and beside it the n-gram's and their ratio."""
    out = {"perplexity": perplexity_report(loaded, poems)}
    if loaded.config.condition == "keywords":
        out["prompted"] = perplexity_report(loaded, poems, prompted=True)
    if fitted:
        out["ngram"] = ngram_report(fitted, poems)
        out["ratio_to_ngram"] = out["perplexity"]["perplexity"] / out["ngram"]["perplexity"]
    return out


def prosody_measures(first_line_rhymes=False):
    """Rhyme rates and 平仄 agreement, as ``quality.summarize`` extra measures.

    Even-line rhyme under 中华新韵 by the reader readings, the same with each
    rhyming line read whole (``prosody.heard_rhyme_ok``), and under 平水韵.
    """

    def regular(poems):
        return [forms.split_lines(p) for p in poems if quality.consistent_line_length(p)]

    def rhyme_rate(scheme):
        return lambda poems: _mean([prosody.rhyme_ok(lines, first_line_rhymes, scheme) for lines in regular(poems)])

    def heard_rhyme_rate(poems):
        return _mean([prosody.heard_rhyme_ok(lines, first_line_rhymes) for lines in regular(poems)])

    def tone_agreement(poems):
        fits = [tone_patterns.best_tone_pattern(forms.split_lines(p), "loose") for p in poems]
        return _mean([fit[0] for fit in fits if fit is not None])

    return {"rhyme_rate": rhyme_rate("xinyun"), "heard_rhyme_rate": heard_rhyme_rate,
            "pingshui_rhyme_rate": rhyme_rate("pingshui"), "tone_agreement": tone_agreement}


def tune_measures(pattern):
    """What a ci is judged by beside real ci of its tune: the share that follow the tune table's pattern.

    ``cipai.check`` is the table's own test (shape, rhymes by 词林正韵, every 平/仄 position a
    one-tone character speaks to), not the validator the masks are built against.
    """
    return {"tune_follows": lambda poems: _mean([cipai.check(pattern, p).follows for p in poems])}


def _mean(values):
    return float(np.mean(values)) if len(values) else math.nan


def sample_report(poet, request, count, index, sampling, real_poems, fitted=None):
    """Quality of ``count`` samples for ``request`` drawn with ``sampling``, beside real poems of that form.

    The samples come through the facade (``poet.Poet``), as ``write`` and the server write them.
    With ``fitted`` (the n-gram baseline) each set also gets its per-character
    perplexity under it: how far the written text is from what the corpus makes likely.
    """
    shape = {name: getattr(request, name) for name in SAMPLE_FIELDS}
    written = poet.write(poem=PoemOptions(num=count, **shape), sampling=sampling)
    finished = [p.text for p in written if p.ended]
    tune = poem_request.tune_of(request)
    extra = tune_measures(tune) if tune else prosody_measures(request.first_line_rhymes)
    if fitted:
        extra["ngram_perplexity"] = lambda poems: fitted[0].score(poems).perplexity if poems else math.nan
    generated = quality.summarize(finished, index, extra)
    generated["ended"] = len(finished) / len(written)
    if poem_request.resolve_request(request).shaped:
        generated["constraints_valid"] = _mean([not validator.check_poem(p.text, request) for p in written])
        if not tune:  # a ci's rhyme is its book's, not 中华新韵 heard line by line
            generated["constraints_heard"] = _mean([validator.heard_ok(p.text, request) for p in written])
    if tune:
        real = [p.content for p in real_poems if cipai.tune_name(p.title) == tune.tune or p.title in tune.aliases]
    else:
        real = [p.content for p in real_poems if request.form == forms.FREE or forms.classify(p.content) == request.form]
    return {
        "request": {k: v for k, v in vars(request).items() if v not in ("", False)},
        "generated": generated,
        "real": quality.summarize(real[:count], index, extra) if real else None,
        "examples": finished[:4],
    }


def evaluate(model_dir, data=None, corpus_path=None, samples=0, form_requests=(), ngram_order=5,
             sampling=DEFAULT_SAMPLING):
    """Every figure for a model, as a dict (see the module docstring); ``sampling`` draws the samples.

    Each long stage says on stderr that it has started (the 5-gram alone takes tens of seconds).
    """
    def progress(message):
        print(message, file=sys.stderr, flush=True)

    loaded = store.load(model_dir)
    report = {"model_dir": model_dir, "model": loaded.config.to_dict()}
    train_poems = valid_poems = test_poems = index = None
    if corpus_path:
        all_poems, _ = reading.read_poems(corpus_path)
        fraction = loaded.train.get("valid_fraction", TrainOptions.valid_fraction)
        train_poems, held_out = split.split_train_valid(all_poems, fraction)
        valid_poems, test_poems = split.split_held_out(held_out)
    scored = reading.read_poems(data)[0] if data else valid_poems
    fitted = None
    if train_poems and (scored or samples):
        progress(f"fitting the {ngram_order}-gram baseline on {len(train_poems):,} poems ...")
        fitted = fit_ngram(train_poems, loaded.vocab, ngram_order)
    if scored:
        report["data"] = data or f"{corpus_path} (validation split)"
        progress(f"perplexity of the model on {len(scored):,} poems ...")
        report.update(split_report(loaded, scored, fitted))
        if not data and test_poems:
            progress(f"... and on the {len(test_poems):,} test poems ...")
            report["test"] = {"data": f"{corpus_path} (test split)", **split_report(loaded, test_poems, fitted)}
            index = quality.TrainingIndex(p.content for p in train_poems)
            unseen = [p for p in valid_poems + test_poems if not quality.shares_a_line(p.content, index)]
            progress(f"... and on the {len(unseen):,} held-out poems that share no line with a training poem ...")
            report["unseen"] = {"data": f"{corpus_path} (both held-out halves, only poems sharing no line with training)",
                                **split_report(loaded, unseen, fitted)}
    if samples:
        index = index or quality.TrainingIndex(p.content for p in (train_poems or []))
        requests = [poem_request.PoemRequest(max_len=120)] + list(form_requests)
        progress(f"writing {samples} poems for each of {len(requests)} modes (best of {sampling.best_of}) ...")
        real = (valid_poems or []) + (test_poems or [])  # held out: real poems no model here trained on
        report["samples"] = [
            sample_report(poet_lib.Poet(loaded), r, samples, index, sampling, real, fitted) for r in requests
        ]
        report["sampling"] = {**dataclasses.asdict(sampling), "count": samples}
    return report


MEASURES = [
    ("ended", "ended with EOS"),
    ("constraints_valid", "constraints met"),
    ("form_valid", "regular shape (5/7, ，。)"),
    ("consistent_length", "one line length (5 or 7)"),
    ("constraints_heard", "rhyme and 平仄 as each line is read whole"),
    ("rhyme_rate", "even lines rhyme (中华新韵)"),
    ("heard_rhyme_rate", "even lines rhyme (中华新韵, each line read whole)"),
    ("pingshui_rhyme_rate", "even lines rhyme (平水韵)"),
    ("tone_agreement", "平仄 agreement (loose)"),
    ("tune_follows", "follows the tune's pattern (the table's check: shape, rhymes, 平仄)"),
    ("copied_lines", "lines copied from training"),
    ("copied_poems", "poems copied from training"),
    ("repetition", "a character 3+ times"),
    ("couplet_repetition", "couplets saying a character twice"),
    ("distinct_2", "distinct-2"),
    ("ngram_perplexity", "5-gram perplexity per character"),
]
COUNTS = {"ngram_perplexity"}  # measures that are numbers, not shares


def markdown(report):
    """The report as Markdown tables."""
    out = [f"# Evaluation of `{report['model_dir']}`", ""]
    m = report["model"]
    out.append(f"Model: {m['layers']}×{m['units']} {m['cell']}, {m['input']} input, vocabulary {m['vocab_size']}.")
    for part in [report, report.get("test"), report.get("unseen")]:
        if part and "perplexity" in part:
            out += perplexity_table(part)
    for block in report.get("samples", []):
        name = ", ".join(f"{k}={v}" for k, v in block["request"].items() if k != "max_len") or "free"
        out += ["", f"## Samples: {name} ({report['sampling']['count']} poems, temperature {report['sampling']['temperature']})", "",
                "| measure | generated | real poems |", "|---|---|---|"]
        for key, label in MEASURES:
            if key in block["generated"]:
                real = (block["real"] or {}).get(key)
                number = key in COUNTS
                out.append(f"| {label} | {_fmt(block['generated'][key], number)} | {_fmt(real, number)} |")
        out += ["", "Examples:", ""] + [f"    {e}" for e in block["examples"]]
    return "\n".join(out) + "\n"


def perplexity_table(split):
    """Markdown lines: the RNN's and the n-gram's perplexity on one split, and their ratio."""
    p = split["perplexity"]
    out = ["", f"## Perplexity on {split['data']}", "", "| model | perplexity | tokens | unknown |", "|---|---|---|---|",
           f"| RNN | {p['perplexity']:.2f} | {p['tokens']} | {p['unknown']} |"]
    if "prompted" in split:
        q = split["prompted"]
        out.append(f"| RNN, prompted as in training (its title or 0–{dataset.KEYWORDS_MOST} of its characters) | {q['perplexity']:.2f} "
                   f"| {q['tokens']} | {q['unknown']} |")
    if "ngram" in split:
        n = split["ngram"]
        out.append(f"| {n['order']}-gram Kneser-Ney | {n['perplexity']:.2f} | {n['tokens']} | {n['unknown']} |")
        out += ["", f"RNN / n-gram perplexity: **{split['ratio_to_ngram']:.3f}**"]
    return out


def _fmt(value, number=False):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if number:
        return f"{value:.1f}"
    return f"{value:.1%}" if isinstance(value, float) else str(value)


def evaluate_model(model_dir=None, data=None, corpus_path=None, samples=0, shape=None, ngram_order=5,
                   sampling=DEFAULT_SAMPLING, out="reports/eval"):
    """What ``python -m poetry_rnn.evaluate`` does: evaluate, write the report to ``out``, return its Markdown.

    ``model_dir`` defaults to the shipped model; ``shape`` (a ``poem_request.PoemShape``) with a form other
    than free, or a tune, adds a mode whose samples are written in that shape (a ci beside real ci of its tune).
    """
    if not (data or corpus_path):
        raise PoetryError("give --data (a file to score) and/or --corpus (the training poems)")
    form_requests = []
    if shape is not None and (shape.form != forms.FREE or shape.cipai):
        asked = {f.name: getattr(shape, f.name) for f in dataclasses.fields(poem_request.PoemShape)}
        form_requests.append(poem_request.PoemRequest(**asked))
    report = evaluate(model_dir or store.DEFAULT_MODEL_DIR, data, corpus_path, samples, form_requests, ngram_order,
                      sampling)
    return write_report(report, out)


def write_report(report, out):
    """Write ``report.json`` (strict JSON: a measure with nothing to measure is null) and ``report.md`` to ``out``.

    Returns the Markdown.
    """
    files.write_text(os.path.join(out, "report.json"), files.finite_json(report, ensure_ascii=False, indent=2) + "\n")
    text = markdown(report)
    files.write_text(os.path.join(out, "report.md"), text)
    return text
