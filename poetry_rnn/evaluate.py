"""Measure a model honestly: ``python -m poetry_rnn.evaluate``.

    python -m poetry_rnn.evaluate --model_dir checkpoints/default --corpus data/poems.txt   # RNN vs 5-gram Kneser-Ney
    python -m poetry_rnn.evaluate --model_dir checkpoints/default --data data/valid.txt     # any poems.txt-format file
    python -m poetry_rnn.evaluate --corpus data/poems.txt --samples 1000 --form qijue --rhyme --tones
    python -m poetry_rnn.evaluate --corpus data/ci.txt --samples 100 --cipai 浣溪沙 --tones   # ci beside real ci

Flags -> ``evaluation.report.evaluate_model``, which says what is measured
and writes ``report.md`` and ``report.json`` to ``--out``.
"""

from poetry_rnn.infra import quiet

if __name__ == "__main__":  # the command line only: TensorFlow's start-up notices off, before anything loads it
    quiet.install()

import dataclasses  # noqa: E402

from absl import flags  # noqa: E402

from poetry_rnn.evaluation import report  # noqa: E402
from poetry_rnn.infra import cli  # noqa: E402
from poetry_rnn.options import SamplingOptions  # noqa: E402
from poetry_rnn.verse.poem_request import PoemShape  # noqa: E402

FLAGS = flags.FLAGS
# The shape a constrained sample mode may ask for; PoemShape's other fields stay at their defaults.
SHAPE_FLAGS = ("form", "rhyme", "tones", "scheme", "cipai", "ci_rhyme")


def define_flags():
    flags.DEFINE_string("model_dir", None, "Model directory (default: the shipped model).")
    flags.DEFINE_string("data", None, "A poems.txt-format file to score (default: the corpus's validation split).")
    flags.DEFINE_string("corpus", None, "The training poems.txt: n-gram baseline, novelty and real-poem reference.")
    flags.DEFINE_integer("samples", 0, "Poems to generate per mode for the quality measures (0 = none).", lower_bound=0)
    cli.define_flags(PoemShape, skip=tuple(f.name for f in dataclasses.fields(PoemShape) if f.name not in SHAPE_FLAGS))
    flags.DEFINE_integer("ngram_order", 5, "Order of the Kneser-Ney baseline.", lower_bound=1)
    flags.DEFINE_string("out", "reports/eval", "Folder for report.md and report.json.")
    cli.define_flags(SamplingOptions, defaults={"seed": report.DEFAULT_SAMPLING.seed})


def main(argv):
    cli.refuse_arguments(argv)
    sampling = cli.options_from_flags(SamplingOptions)
    shape = cli.options_from_flags(PoemShape)
    print(report.evaluate_model(FLAGS.model_dir, FLAGS.data, FLAGS.corpus, FLAGS.samples, shape, FLAGS.ngram_order,
                                sampling, FLAGS.out))


if __name__ == "__main__":
    define_flags()
    cli.run(main, bare_values=cli.bare_values(PoemShape))
