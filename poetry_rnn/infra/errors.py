"""The one exception type users see.

Every problem a user can cause (a missing file, a character outside the
vocabulary, an impossible template) raises :class:`PoetryError` with a
one-line message naming the problem; ``cli.run`` turns it into
``error: <message>`` on stderr and exit status 2.
"""


class PoetryError(ValueError):
    """A problem with the user's input, reported as one line and exit code 2."""


class OptionError(PoetryError):
    """A bad value for one option, which each face names its own way.

    The message names the command-line flag (``--tones must be ...``);
    ``spoken_as("keyword")`` names the Python keyword argument and
    ``spoken_as("json")`` the JSON field, so an error speaks the language of
    the face the value came through.
    """

    SPELLINGS = {"flag": "--{}", "keyword": "keyword argument {!r}", "json": "JSON field {!r}", "plain": "{}"}

    def __init__(self, name, problem, face="flag"):
        self.name, self.problem = name, problem
        super().__init__(f"{self.SPELLINGS[face].format(name)} {problem}")

    def spoken_as(self, face):
        return OptionError(self.name, self.problem, face)
