"""Write poems with a trained model: ``python -m poetry_rnn.write --begin 日 红 山 夜``.

Flags -> ``options.ModelOptions``, ``options.PoemOptions`` and ``options.SamplingOptions`` -> ``Poet.write``
-> text or JSON lines. Without ``--model_dir`` it uses the shipped default
model. All the logic (forms, rhyme, tones, sampling, batching) is in ``poet``
and below; this module only parses flags and prints.
"""

from poetry_rnn.infra import quiet

if __name__ == "__main__":  # the command line only: TensorFlow's start-up notices off, before anything loads it
    quiet.install()

import json  # noqa: E402
import sys  # noqa: E402

from absl import flags  # noqa: E402

from poetry_rnn.infra import cli, files  # noqa: E402
from poetry_rnn import poet as poet_lib  # noqa: E402
from poetry_rnn.options import ModelOptions, PoemOptions, SamplingOptions  # noqa: E402
from poetry_rnn.verse import cipai  # noqa: E402

FLAGS = flags.FLAGS
# --begin 日 红 (lists), --tones alone (= loose), --rhyme loose (= --rhyme --rhyme_loose).
CLI_CONVENTIONS = dict(list_flags=("begin", "prefix", "keywords"), bare_values=cli.bare_values(PoemOptions),
                       spellings={"--rhyme": {"loose": ["--rhyme", "--rhyme_loose"]}})


def define_flags():
    cli.define_flags(ModelOptions)
    cli.define_flags(PoemOptions)
    cli.define_flags(SamplingOptions)
    flags.DEFINE_enum("format", "text", ["text", "jsonl"], "text: one line per sentence; jsonl: one JSON object per poem.")
    flags.DEFINE_string("out", None, "Write to this file (atomically) instead of stdout.")


def pretty(poem):
    """Title (if any) then one line per sentence."""
    return "\n".join(([f"《{poem.title}》"] if poem.title else []) + poem.lines)


def format_poems(poems, fmt):
    if fmt == "jsonl":
        return "".join(json.dumps(p.to_dict(), ensure_ascii=False, allow_nan=False) + "\n" for p in poems)
    return "\n\n".join(pretty(p) for p in poems) + "\n"


def write(model, poem_options, sampling, fmt="text", out=None):
    """Write the poems of one ask (``model``: ModelOptions) to ``out`` (a file, atomically) or stdout; returns them."""
    poet = poet_lib.load(model.model_dir, model.precision)
    ask = poet_lib.make_ask(poem_options, sampling)
    poems = poet.write_asks([ask])[0]
    if sampling.seed is None:  # so a poem you like can be written again
        print(f"seed {ask.sampling.seed}", file=sys.stderr)
    text = format_poems(poems, fmt)
    if out:
        files.write_text(out, text)
    else:
        sys.stdout.write(text)
    return poems


def main(argv):
    cli.refuse_arguments(argv)
    if FLAGS.cipai == cipai.LIST:
        print(cipai.tune_list())
        return
    write(cli.options_from_flags(ModelOptions), cli.options_from_flags(PoemOptions),
          cli.options_from_flags(SamplingOptions), FLAGS.format, FLAGS.out)


if __name__ == "__main__":
    define_flags()
    cli.run(main, **CLI_CONVENTIONS)
