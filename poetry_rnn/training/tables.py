"""The package's tables over the training split of a prepared poems.txt or ci.txt.

``python -m poetry_rnn.prepare --title_table ... --line_end_table ... --subject_table ... --double_table ...``
writes the count tables after the poems, ``--cipai_table`` the tune patterns
after the ci (``corpus.prepare``). The counting is the corpus's
(``corpus.titles``, ``corpus.line_ends``, ``corpus.doubles``, ``corpus.cipai_table``); which
poems are the training split is training's (the hash rule of
``corpus.split`` with train's default ``--valid_fraction``), so the tables
are counted here, on the training floor. Importing this module loads no
TensorFlow.
"""

from poetry_rnn.corpus import cipai_table, doubles, line_ends, reading, split, titles
from poetry_rnn.infra import fields


def write_training_tables(poems_path, title_table=None, line_end_table=None, subject_table=None, double_table=None,
                          valid_fraction=None):
    """The package's count tables over the training split of the prepared poems (never the held-out ones).

    ``title_table``: ``titles.write_table``; ``line_end_table``:
    ``line_ends.write_table``; ``subject_table``: ``titles.write_subjects``;
    ``double_table``: ``doubles.write_table``; each written when a path is given.
    ``valid_fraction`` defaults to train's, so the poems counted are the ones a default run trains on.
    """
    if valid_fraction is None:
        valid_fraction = default_valid_fraction()
    poems, _ = reading.read_poems(poems_path)
    train, _ = split.split_train_valid(poems, valid_fraction)
    for name, path, writer in (("title", title_table, titles.write_table),
                               ("line-end", line_end_table, line_ends.write_table),
                               ("subject", subject_table, titles.write_subjects),
                               ("double", double_table, doubles.write_table)):
        if path:
            rows = writer(path, train)
            print(f"{name} table: {rows} rows from {len(train)} training poems, written to {path}")


def default_valid_fraction():
    """train's default ``--valid_fraction``: the share a default run holds out, and so the tables never count."""
    from poetry_rnn.training import train_options  # here, not above: it loads TensorFlow

    return fields.defaults(train_options.TrainOptions)["valid_fraction"]


def write_cipai_table(ci_path, cipai_path, valid_fraction=None):
    """The tune patterns (``corpus.cipai_table``) read off the training split of a prepared ci.txt.

    ``valid_fraction`` defaults to train's, so a ci model trained by default
    never trains on the held-out ci the table is judged by.
    """
    if valid_fraction is None:
        valid_fraction = default_valid_fraction()
    ci, _ = reading.read_poems(ci_path)
    train, held_out = split.split_train_valid(ci, valid_fraction)
    tunes = cipai_table.write_table(cipai_path, train)
    print(f"tune table: {tunes} tunes from {len(train)} training ci ({len(held_out)} held out), written to {cipai_path}")
