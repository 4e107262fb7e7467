"""Write poems with a trained model: ``python -m poetry_rnn.write --begin 日 红 山 夜``.

Without ``--model_dir`` it uses the shipped default model in
``checkpoints/default``. Every poem of one command is decoded in one batched,
in-graph call (see ``decode``); forms, rhyme, tones, acrostics, templates and
titles are masks over the vocabulary (see ``constraints``).
"""

import dataclasses
import json
import os
import random
import sys

from absl import flags

from poetry_rnn import cli, constraints, decode, files, forms, modeldir
from poetry_rnn.errors import PoetryError

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("model_dir", None, "Model directory (default: the shipped checkpoints/default).")
    flags.DEFINE_list("begin", [], "Begin characters: one poem (per --num) for each, e.g. --begin 日 红 山 夜.")
    flags.DEFINE_list("prefix", [], "Lyrics models: text to continue for --length characters, e.g. --prefix 分开 不分开.")
    flags.DEFINE_integer("length", 50, "Characters to add after each --prefix.")
    flags.DEFINE_integer("num", 1, "Poems per begin character (or in all without --begin).")
    flags.DEFINE_enum("form", forms.FREE, list(forms.FORM_NAMES), "free, wujue (五绝), qijue (七绝), wulv (五律), qilv (七律).")
    flags.DEFINE_bool("rhyme", False, "Even lines end in one 中华新韵 rhyme group (needs --form).")
    flags.DEFINE_bool("first_line_rhymes", False, "首句入韵: the first line rhymes too.")
    flags.DEFINE_enum("tones", "off", list(constraints.TONE_LEVELS), "平仄: off, loose (--tones alone: 2nd/4th/6th and last) or strict.")
    flags.DEFINE_enum("tone_start", "random", ["ping", "ze", "random"], "平起 or 仄起 (random: per poem).")
    flags.DEFINE_string("acrostic", "", "藏头诗: one character at the head of each line, e.g. 春夏秋冬.")
    flags.DEFINE_string("template", "", "The whole poem with ? for free characters, e.g. 春风??????，???????。")
    flags.DEFINE_string("title", "", "Title to write to (models trained with --condition title).")
    flags.DEFINE_float("temperature", 0.8, "Sampling temperature; 0 = greedy.")
    flags.DEFINE_integer("top_k", 0, "Sample among the k most likely characters (0 = all).")
    flags.DEFINE_float("top_p", 1.0, "Nucleus sampling: the smallest set with this much probability.")
    flags.DEFINE_integer("seed", None, "Seed for reproducible poems (default: random).")
    flags.DEFINE_integer("max_len", 120, "Free poems: most characters before the poem is cut.")
    flags.DEFINE_integer("best_of", 1, "Sample this many candidates per poem, keep the most likely.")
    flags.DEFINE_enum("format", "text", ["text", "jsonl"], "text: one line per sentence; jsonl: one JSON object per poem.")
    flags.DEFINE_string("out", None, "Write to this file (atomically) instead of stdout.")


def check_sampling(temperature, top_k, top_p, num, best_of):
    if temperature < 0:
        raise PoetryError(f"--temperature must be >= 0 (0 = greedy), got {temperature}")
    if not 0 < top_p <= 1:
        raise PoetryError(f"--top_p must be in (0, 1], got {top_p}")
    if top_k < 0:
        raise PoetryError(f"--top_k must be >= 0, got {top_k}")
    if num < 1 or best_of < 1:
        raise PoetryError("--num and --best_of must be at least 1")


def build_requests(begins, num, seed, **fields):
    """One PoemRequest per (begin, copy); 平起/仄起 at random per poem unless given.

    A random start is drawn among those the fixed characters fit, so
    ``--begin 东 --tones`` never fails for a start it could have avoided.
    """
    rng = random.Random(seed)
    tone_start = fields.pop("tone_start")
    requests = []
    for begin in begins or [""]:
        request = constraints.PoemRequest(begin=begin, **fields)
        starts = [tone_start] if tone_start != "random" else constraints.tone_starts_that_fit(request) or ["ping"]
        requests += [dataclasses.replace(request, tone_start=rng.choice(starts)) for _ in range(num)]
    return requests


def pretty(poem):
    """Title (if any) then one line per sentence."""
    lines = forms.split_lines(poem.content)
    return "\n".join(([f"《{poem.title}》"] if poem.title else []) + lines)


def as_json(poem, seed):
    request = poem.request
    return json.dumps(
        {
            "begin": request.begin,
            "title": poem.title,
            "text": poem.content,
            "lines": forms.split_lines(poem.content),
            "form": request.form,
            "rhyme_group": constraints.rhyme_group_name(poem.content) if request.rhyme else None,
            "tone_start": request.tone_start if request.tones != "off" else None,
            "ended": poem.ended,
            "mean_logprob": round(poem.mean_logprob, 4),
            "logprobs": [round(x, 4) for x in poem.logprobs],
            "seed": seed,
        },
        ensure_ascii=False,
    )


def main(argv):
    cli.refuse_arguments(argv)
    check_sampling(FLAGS.temperature, FLAGS.top_k, FLAGS.top_p, FLAGS.num, FLAGS.best_of)
    model_dir = FLAGS.model_dir or modeldir.DEFAULT_MODEL_DIR
    loaded = modeldir.load(model_dir)
    seed = FLAGS.seed if FLAGS.seed is not None else random.SystemRandom().randrange(2**31)
    stream = loaded.train.get("corpus") == "lyrics"
    if stream:
        poems = write_stream(loaded, seed)
    else:
        poems = write_poems(loaded, seed)
    if FLAGS.format == "jsonl":
        text = "".join(as_json(p, seed) + "\n" for p in poems)
    else:
        text = "\n\n".join(p.content if stream else pretty(p) for p in poems) + "\n"
    if FLAGS.out:
        files.write_text(FLAGS.out, text)
    else:
        sys.stdout.write(text)


def write_stream(loaded, seed):
    """Lyrics models: each --prefix (or --begin) fed, then exactly --length characters, no EOS."""
    poem_only = {
        "--form": FLAGS.form != forms.FREE, "--rhyme": FLAGS.rhyme, "--tones": FLAGS.tones != "off",
        "--acrostic": FLAGS.acrostic, "--template": FLAGS.template, "--title": FLAGS.title,
    }
    used = [name for name, value in poem_only.items() if value]
    if used:
        raise PoetryError(f"{loaded.path} is a lyrics model; {', '.join(used)} needs a poem model")
    prefixes = [p for p in (FLAGS.prefix or FLAGS.begin or [""]) for _ in range(FLAGS.num)]
    return decode.continue_streams(
        loaded.model, loaded.vocab, prefixes, FLAGS.length, FLAGS.temperature, FLAGS.top_k, FLAGS.top_p, seed, FLAGS.best_of,
    )


def write_poems(loaded, seed):
    requests = build_requests(
        FLAGS.prefix or FLAGS.begin,
        FLAGS.num,
        seed,
        form=FLAGS.form,
        rhyme=FLAGS.rhyme,
        first_line_rhymes=FLAGS.first_line_rhymes,
        tones=FLAGS.tones,
        tone_start=FLAGS.tone_start,
        acrostic=FLAGS.acrostic,
        template=FLAGS.template,
        title=FLAGS.title,
        max_len=FLAGS.max_len,
    )
    return decode.generate(
        loaded.model, loaded.vocab, requests, FLAGS.temperature, FLAGS.top_k, FLAGS.top_p, seed, FLAGS.best_of,
        title_conditioned=loaded.config.condition == "title",
    )


if __name__ == "__main__":
    define_flags()
    cli.run(main, list_flags=("begin", "prefix"), bare_values={"tones": "loose"})
