"""Compare cells and inputs on one budget: ``python -m poetry_rnn.compare --corpus lyrics``.

    python -m poetry_rnn.compare --corpus lyrics --cells rnn lstm gru --inputs embedding onehot \
        --epochs 10 --out reports/compare-lyrics

Flags -> ``CompareOptions``, ``TrainOptions`` and ``SamplingOptions`` ->
``evaluation.compare.compare``, which trains every (cell, input) pair and
writes ``README.md``, ``loss.png`` and ``results.json`` to ``--out``.
"""

from poetry_rnn.infra import quiet

if __name__ == "__main__":  # the command line only: TensorFlow's start-up notices off, before anything loads it
    quiet.install()

import sys  # noqa: E402

from absl import flags  # noqa: E402

from poetry_rnn.evaluation import compare  # noqa: E402
from poetry_rnn.infra import cli  # noqa: E402
from poetry_rnn.model.network import CELLS, INPUTS  # noqa: E402
from poetry_rnn.options import SamplingOptions  # noqa: E402
from poetry_rnn.training.train_options import TrainOptions  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    cli.define_flags(compare.CompareOptions)
    # --cell and --input are the grid's; --samples above is compare's own; --seed seeds training and samples.
    cli.define_flags(TrainOptions, skip=("cell", "input", "samples"), defaults=compare.COMPARE_DEFAULTS)
    cli.define_flags(SamplingOptions, skip=("seed",))


def main(argv):
    cli.refuse_arguments(argv)
    cli.check_choices("cells", FLAGS.cells, CELLS)
    cli.check_choices("inputs", FLAGS.inputs, INPUTS)
    train = cli.options_from_flags(TrainOptions, samples=0)
    sampling = cli.options_from_flags(SamplingOptions)
    command = "python -m poetry_rnn.compare " + " ".join(sys.argv[1:])
    result = compare.compare(cli.options_from_flags(compare.CompareOptions), train, sampling, command)
    print(result.table, end="")
    if not any(run.ok for run in result.runs):
        sys.exit(1)


if __name__ == "__main__":
    define_flags()
    cli.run(main, list_flags=("cells", "inputs"))
