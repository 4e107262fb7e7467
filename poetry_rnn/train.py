"""Train a character-level RNN poet: ``python -m poetry_rnn.train --cell lstm``.

Flags -> ``TrainOptions`` -> ``trainer.fit``. Running the same command again
resumes from the newest checkpoint; see docs/training.md for every flag.
"""

import os
import sys

from absl import flags

from poetry_rnn import cli, trainer
from poetry_rnn.train_options import TrainOptions

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
    history = trainer.fit(data, FLAGS.model_dir, options)
    if history.interrupted:
        sys.exit(128 + history.interrupted)  # 130 after Ctrl-C, 143 after SIGTERM, as shells report them


if __name__ == "__main__":
    define_flags()
    cli.run(main)
