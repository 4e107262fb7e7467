"""The package's count tables over the training split of a prepared poems.txt.

``python -m poetry_rnn.prepare --title_table ... --line_end_table ...``
writes them after the corpus (``corpus.prepare``). The counting is the
corpus's (``corpus.titles``, ``corpus.line_ends``); which poems are the
training split is training's (``dataset.split_train_valid`` with train's
default ``--valid_fraction``), so the tables are counted here, on the
training floor. Importing this module loads no TensorFlow.
"""

from poetry_rnn.corpus import line_ends, reading, titles
from poetry_rnn.infra import fields


def write_training_tables(poems_path, title_table=None, line_end_table=None, valid_fraction=None):
    """The package's count tables over the training split of the prepared poems (never the held-out ones).

    ``title_table``: ``titles.write_table``; ``line_end_table``:
    ``line_ends.write_table``; each written when a path is given.
    ``valid_fraction`` defaults to train's, so the poems counted are the ones a default run trains on.
    """
    from poetry_rnn.training import dataset, train_options  # here, not above: they load TensorFlow

    if valid_fraction is None:
        valid_fraction = fields.defaults(train_options.TrainOptions)["valid_fraction"]
    poems, _ = reading.read_poems(poems_path)
    train, _ = dataset.split_train_valid(poems, valid_fraction)
    for name, path, writer in (("title", title_table, titles.write_table),
                               ("line-end", line_end_table, line_ends.write_table)):
        if path:
            rows = writer(path, train)
            print(f"{name} table: {rows} characters from {len(train)} training poems, written to {path}")
