"""Export a model: ``python -m poetry_rnn.export``.

    python -m poetry_rnn.export --model_dir checkpoints/default --out exported/poet/1
    python -m poetry_rnn.export --model_dir checkpoints/mine --out checkpoints/small --format compact

A SavedModel for TensorFlow Serving (``serving.savedmodel`` says what its
``generate`` signature takes), or the compact folder (config, vocabulary,
float16 weights) the default model ships in.
"""

from poetry_rnn.infra import quiet

if __name__ == "__main__":  # the command line only: TensorFlow's start-up notices off, before anything loads it
    quiet.install()

import sys  # noqa: E402

from absl import flags  # noqa: E402

from poetry_rnn.infra import cli  # noqa: E402
from poetry_rnn.model import store  # noqa: E402
from poetry_rnn.serving import savedmodel  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("model_dir", None, "Model directory to export (default: the shipped model).")
    flags.DEFINE_string("out", "exported/poet/1", "New SavedModel folder (TensorFlow Serving: <base>/<name>/<version>).")
    flags.DEFINE_integer("free_max_len", savedmodel.DEFAULT_FREE_MAX_LEN, "Most characters of a free poem.")
    flags.DEFINE_enum("format", "savedmodel", ["savedmodel", "compact"],
                      "savedmodel (TensorFlow Serving) or compact (config, vocabulary, float16 weights: the shipped form).")


def main(argv):
    cli.refuse_arguments(argv)
    model_dir = FLAGS.model_dir or store.DEFAULT_MODEL_DIR
    if FLAGS.format == "compact":
        print(f"wrote {savedmodel.export_compact(model_dir, FLAGS.out)}", file=sys.stderr)
        return
    path = savedmodel.export(model_dir, FLAGS.out, FLAGS.free_max_len)
    print(f"exported {model_dir} to {path} (signature {savedmodel.SIGNATURE!r})", file=sys.stderr)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
