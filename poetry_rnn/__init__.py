"""poetry_rnn: character-level RNN poets (SimpleRNN, LSTM, GRU) in TensorFlow/Keras.

From Python::

    import poetry_rnn
    poet = poetry_rnn.load()            # the shipped model, or load("path/to/model_dir")
    poems = poet.write(begin="日", form="qijue", rhyme=True, num=4, seed=1)
    print(poems[0].text, poems[0].lines, poems[0].rhyme_group)

One module per stage: ``prepare`` (corpus JSON -> poems.txt), ``train``
(poems.txt -> model directory), ``write`` (model directory -> poems),
``serve`` (a web page and JSON API), ``evaluate`` and ``export``; ``poet`` is
the facade all of them share. Importing the package loads no TensorFlow and
changes nothing in the process (no environment variable, no import hook);
TensorFlow loads with the first model. The command-line entry points, and
only they, keep TensorFlow's start-up notices off the terminal
(``infra.quiet``).
"""

from poetry_rnn.infra.errors import PoetryError

__version__ = "0.2.0"
__all__ = ["load", "PoetryError", "__version__"]


def load(model_dir=None, **options):
    """A :class:`poetry_rnn.poet.Poet` for ``model_dir`` (default: the shipped model).

    ``options``: ``precision`` (``options.ModelOptions``: auto, float32 or
    bfloat16). TensorFlow is imported here, on first use, not by
    ``import poetry_rnn``.
    """
    from poetry_rnn import poet  # deferred on purpose: it imports TensorFlow

    return poet.load(model_dir, **options)
