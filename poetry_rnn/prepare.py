"""Corpus JSON -> ``data/poems.txt`` (Tang poems), ``data/ci.txt`` (Song ci) or ``data/lyrics.txt`` (lyrics).

    python -m poetry_rnn.prepare --source ../shared/corpus/quan_tang_shi --out data/poems.txt
    python -m poetry_rnn.prepare --source https://.../chinese-poetry/archive/master.zip --out data/poems.txt
    python -m poetry_rnn.prepare --lyrics ../shared/corpus/jaychou_lyrics/jaychou_lyrics.txt.zip --out data/lyrics.txt
    python -m poetry_rnn.prepare --source ../shared/corpus/quan_tang_shi --out data/poems.txt \
        --title_table poetry_rnn/data/title_carry.tsv \
        --line_end_table poetry_rnn/data/line_ends.tsv \
        --subject_table poetry_rnn/data/subjects.tsv \
        --double_table poetry_rnn/data/doubles.tsv  # also the package's tables (titles.py, line_ends.py, doubles.py)
    python -m poetry_rnn.prepare --ci ../shared/corpus/song_ci --out data/ci.txt \
        --cipai_table poetry_rnn/data/cipai.json  # the Song ci, and the tune patterns (corpus/cipai_table.py)

Flags -> ``corpus.prepare.prepare`` (its module says what a source may be
and how it is cleaned); the tables are counted by ``training.tables``.
"""

from poetry_rnn.infra import quiet

if __name__ == "__main__":  # the command line only: TensorFlow's start-up notices off, before anything loads it
    quiet.install()

import functools  # noqa: E402

from absl import flags  # noqa: E402

from poetry_rnn.corpus import prepare  # noqa: E402
from poetry_rnn.infra import cli, files  # noqa: E402
from poetry_rnn.infra.errors import PoetryError  # noqa: E402
from poetry_rnn.training import tables  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """Flags exist only when this module runs as a program, so importing it
    (tests, other stages) never claims flag names like --out or --max_len."""
    flags.DEFINE_string(
        "source", None, "Tang poems: folder of poet.tang.N.json, chinese-poetry zip, or http(s) URL of the zip."
    )
    flags.DEFINE_string("ci", None, "Song ci: folder of ci.song.N.json (宋词), chinese-poetry zip, or http(s) URL "
                        "of the zip (instead of --source).")
    flags.DEFINE_string("lyrics", None, "Lyrics: a .txt file, or a zip holding one (instead of --source).")
    flags.DEFINE_string("out", None, "Output file (default data/poems.txt, data/ci.txt with --ci, or data/lyrics.txt "
                        "with --lyrics).")
    flags.DEFINE_integer(
        "max_len", prepare.DEFAULT_MAX_LEN, "Drop poems whose content (incl. punctuation) is longer.", lower_bound=1
    )
    flags.DEFINE_bool("forms", False, "Keep only 五绝/七绝/五律/七律-shaped poems.")
    flags.DEFINE_string("cache_dir", files.CACHE_DIR, "Where a --source or --ci URL is downloaded to, once.")
    flags.DEFINE_string("sha256", None, "Expected SHA-256 of the --source or --ci zip (downloaded or local).")
    flags.DEFINE_string("title_table", None, "Also write how often each title character is written into its poem, "
                        "counted over the training split (train's default --valid_fraction), to this file.")
    flags.DEFINE_string("line_end_table", None, "Also write how often each character ends a line, counted over the "
                        "training split, to this file (line_ends.py).")
    flags.DEFINE_string("subject_table", None, "Also write the real titles an unprompted poem draws its subject from, "
                        "with their poems' couplet counts, counted over the training split, to this file (titles.py).")
    flags.DEFINE_string("double_table", None, "Also write how often each character is doubled in a line (萧萧), "
                        "counted over the training split, to this file (corpus/doubles.py).")
    flags.DEFINE_string("cipai_table", None, "With --ci: also write each tune's pattern, read off the training split "
                        "of the ci, to this file (corpus/cipai_table.py).")


def main(argv):
    cli.refuse_arguments(argv)
    write_tables = None
    if FLAGS.title_table or FLAGS.line_end_table or FLAGS.subject_table or FLAGS.double_table:
        if FLAGS.source is None:
            raise PoetryError("--title_table, --line_end_table, --subject_table and --double_table are counted over "
                              "Tang poems: give --source")
        write_tables = functools.partial(tables.write_training_tables, title_table=FLAGS.title_table,
                                         line_end_table=FLAGS.line_end_table, subject_table=FLAGS.subject_table,
                                         double_table=FLAGS.double_table)
    if FLAGS.cipai_table:
        if FLAGS.ci is None:
            raise PoetryError("--cipai_table is read off Song ci: give --ci")
        write_tables = functools.partial(tables.write_cipai_table, cipai_path=FLAGS.cipai_table)
    prepare.prepare(FLAGS.source, FLAGS.lyrics, FLAGS.out, FLAGS.max_len, FLAGS.forms, FLAGS.cache_dir, FLAGS.sha256,
                    write_tables, ci=FLAGS.ci)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
