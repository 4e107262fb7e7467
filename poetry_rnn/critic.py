"""Learn from a model's own drafts what gives them away: ``python -m poetry_rnn.critic``.

    python -m poetry_rnn.critic --model_dir checkpoints/default --data data/poems.txt
    python -m poetry_rnn.critic --learn overuse            # the over-use table alone, the critic kept
    python -m poetry_rnn.write --critic_weight 0.3 --overuse_penalty 1.5

Flags -> ``evaluation.critic_training.learn_from_drafts``, which writes the
model's drafts and learns from them, against real training-split poems, the
critic of drafts (``<model_dir>/critic/``; ``generation/critic.py`` says
what it is and how ``best_of`` uses it) and the over-use table
(``<model_dir>/overuse.npz``; ``generation/overuse.py``).
"""

from poetry_rnn.infra import quiet

if __name__ == "__main__":  # the command line only: TensorFlow's start-up notices off, before anything loads it
    quiet.install()

from absl import flags  # noqa: E402

from poetry_rnn.evaluation import critic_training  # noqa: E402
from poetry_rnn.generation.critic import CriticConfig  # noqa: E402
from poetry_rnn.infra import cli  # noqa: E402
from poetry_rnn.model import store  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("model_dir", None, "Model directory whose critic to train (default: the shipped model).")
    flags.DEFINE_string("data", "data/poems.txt", "The model's training poems.txt (its training split is read).")
    cli.define_flags(CriticConfig)
    cli.define_flags(critic_training.CriticData, skip=("seed",))


def main(argv):
    cli.refuse_arguments(argv)
    config = cli.options_from_flags(CriticConfig)
    what = cli.options_from_flags(critic_training.CriticData, seed=config.seed)
    critic_training.learn_from_drafts(FLAGS.model_dir or store.DEFAULT_MODEL_DIR, FLAGS.data, config, what)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
