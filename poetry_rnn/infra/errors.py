"""The one exception type users see.

Every problem a user can cause (a missing file, a character outside the
vocabulary, an impossible template) raises :class:`PoetryError` with a
one-line message naming the problem; ``cli.run`` turns it into
``error: <message>`` on stderr and exit status 2.
"""


class PoetryError(ValueError):
    """A problem with the user's input, reported as one line and exit code 2."""
