"""Train a character-level RNN poet: ``python -m poetry_rnn.train --cell lstm``.

Flags -> ``TrainOptions`` -> ``trainer.fit``. Running the same command again
resumes from the newest checkpoint; see docs/training.md for every flag.
"""

from poetry_rnn.infra import quiet

if __name__ == "__main__":  # the command line only: TensorFlow's start-up notices off, before anything loads it
    quiet.install()

import os  # noqa: E402
import sys  # noqa: E402

from absl import flags  # noqa: E402

from poetry_rnn.corpus import prepare  # noqa: E402
from poetry_rnn.infra import cli  # noqa: E402
from poetry_rnn.infra.errors import PoetryError  # noqa: E402
from poetry_rnn.training import trainer  # noqa: E402
from poetry_rnn.training.train_options import TrainOptions  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("data", None, "A poems.txt file (title:content per line), or with --corpus lyrics a text file "
                        "(default data/poems.txt, or data/lyrics.txt with --corpus lyrics).")
    flags.DEFINE_string("model_dir", "checkpoints/lstm", "Where config, vocabulary, checkpoints and logs go.")
    cli.define_flags(TrainOptions)


def main(argv):
    cli.refuse_arguments(argv)
    options = cli.options_from_flags(TrainOptions)
    data = FLAGS.data or os.path.join("data", "lyrics.txt" if options.corpus == "lyrics" else "poems.txt")
    if not os.path.exists(data):
        raise PoetryError(f"file not found: {data}; build it with: {prepare.BUILD_COMMANDS[options.corpus].format(out=data)}")
    history = trainer.fit(data, FLAGS.model_dir, options)
    if history.interrupted:
        sys.exit(128 + history.interrupted)  # 130 after Ctrl-C, 143 after SIGTERM, as shells report them


if __name__ == "__main__":
    define_flags()
    cli.run(main)
