"""The one exception type users see, and how entry points report it.

Every problem a user can cause (a missing file, a character outside the
vocabulary, an impossible template) raises :class:`PoetryError` with a
one-line message naming the problem. Entry points run their ``main`` through
:func:`run`, which turns that error into ``error: <message>`` on stderr and
exit status 2, with no traceback unless ``--debug`` is given.
"""

import sys


class PoetryError(ValueError):
    """A problem with the user's input, reported as one line and exit code 2."""


EXIT_USAGE = 2


def run(main):
    """Run an absl ``main`` so that PoetryError becomes one line and exit 2.

    absl parses the flags; a bad flag value (absl's own IllegalFlagValueError)
    is likewise one line and exit 2, which absl already does.
    """
    from absl import app, flags

    # Defined here, once, so every entry point has the same --debug switch.
    if "debug" not in flags.FLAGS:
        flags.DEFINE_bool("debug", False, "Show full tracebacks instead of one-line errors.")

    def guarded(argv):
        try:
            return main(argv)
        except PoetryError as error:
            if flags.FLAGS.debug:
                raise
            print(f"error: {error}", file=sys.stderr)
            sys.exit(EXIT_USAGE)

    app.run(guarded)
