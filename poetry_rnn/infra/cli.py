"""What every entry point shares: one-line errors, exit codes, list flags.

Entry points (prepare, train, write, evaluate, export, compare, serve) define
their own absl flags and call ``cli.run(main, list_flags=...)``. This module adds:

* ``--debug``: show the traceback instead of one line;
* PoetryError -> ``error: <message>`` on stderr, exit status 2;
* space-separated list values as the README writes them,
  ``--begin 日 红 山 夜``, rewritten to absl's ``--begin=日,红,山,夜``.
"""

import dataclasses
import sys

from absl import app, flags

from poetry_rnn.infra import fields
from poetry_rnn.infra.errors import PoetryError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C
HELP_FLAGS = {"--help", "-help", "-h", "--helpshort", "--helpfull", "-?"}

flags.DEFINE_bool("debug", False, "Show full tracebacks instead of one-line errors.")


class SpacedListParser(flags.ListParser):
    """absl's list parser, described as users write lists here: ``--begin 日 红`` (see gather_list_flags)."""

    def __init__(self):
        super().__init__()
        self.syntactic_help = "space-separated values (commas work too)"


def option_fields(cls, skip=()):
    """The flag-making :func:`fields.option` fields of ``cls``, a nested option dataclass's included."""
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(field.type):
            yield from option_fields(field.type, skip)
        elif "help" in field.metadata and field.metadata["flag"] and field.name not in skip:
            yield field


def define_flags(cls, skip=(), defaults=None):
    """Define one absl flag per :func:`fields.option` field of dataclass ``cls``.

    Name, default, help and choices come from the field, so an entry point
    never restates them; ranges are checked when the dataclass is built. The
    flags belong to the calling entry point, so its ``--help`` lists them.
    ``defaults`` gives an entry point its own defaults (compare trains
    smaller models than train); ``skip`` leaves fields to code.
    """
    caller = sys._getframe(1).f_globals["__name__"]
    owner = {"module_name": sys.argv[0] if caller == "__main__" else caller}
    defaults = defaults or {}
    for field in option_fields(cls, skip):
        meta = field.metadata
        default = defaults.get(field.name, field.default)
        kind = fields.field_kind(field)
        if meta["choices"]:
            flags.DEFINE_enum(field.name, default, list(meta["choices"]), meta["help"], **owner)
        elif kind is bool:
            flags.DEFINE_bool(field.name, default, meta["help"], **owner)
        elif kind is list:
            flags.DEFINE(SpacedListParser(), field.name, list(defaults.get(field.name, field.default_factory())),
                         meta["help"], serializer=flags.CsvListSerializer(","), **owner)
        elif kind is int:
            flags.DEFINE_integer(field.name, default, meta["help"], **owner)
        elif kind is float:
            flags.DEFINE_float(field.name, default, meta["help"], **owner)
        else:
            flags.DEFINE_string(field.name, default, meta["help"], **owner)


def bare_values(cls):
    """``{flag: value}`` for the flags of ``cls`` that may be written alone (``--tones`` = ``--tones loose``)."""
    return {field.name: field.metadata["aliases"][True] for field in option_fields(cls)
            if True in field.metadata.get("aliases", {})}


def options_from_flags(cls, **overrides):
    """An instance of ``cls`` from the flags :func:`define_flags` made (PoetryError if a value is out of range).

    A nested option dataclass (``TrainOptions.model``) is built from its own flags.
    """
    values = {}
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(field.type):
            values[field.name] = options_from_flags(field.type)
        elif "help" in field.metadata and field.metadata["flag"] and field.name in flags.FLAGS:
            values[field.name] = getattr(flags.FLAGS, field.name)
    return cls(**{**values, **overrides})


def check_choices(name, values, choices):
    """Each value of list flag ``--name`` must be one of ``choices`` (what an enum flag checks for one value)."""
    for value in values:
        fields.check_value(name, value, {"choices": tuple(choices), "flag": True}, str)


def refuse_arguments(argv):
    """Entry points take flags only: a stray positional argument is an error, not ignored."""
    if len(argv) > 1:
        raise PoetryError(f"unexpected arguments: {' '.join(argv[1:])}")


def gather_list_flags(argv, names):
    """Rewrite ``--name a b c`` (values up to the next ``-`` token) as ``--name=a,b,c``."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        name = arg[2:] if arg.startswith("--") else None
        if name in names:
            values = []
            while i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                values.append(argv[i + 1])
                i += 1
            out.append(f"--{name}=" + ",".join(values))
        else:
            out.append(arg)
        i += 1
    return out


def fill_bare_values(argv, bare_values):
    """Give ``--name`` written alone (end of line or before another flag) its bare value."""
    out = []
    for i, arg in enumerate(argv):
        following = argv[i + 1] if i + 1 < len(argv) else "-"
        if arg.startswith("--") and arg[2:] in bare_values and following.startswith("-"):
            arg = f"{arg}={bare_values[arg[2:]]}"
        out.append(arg)
    return out


def expand_spellings(argv, spellings):
    """Rewrite ``--flag word`` as the flags ``spellings[flag][word]`` stands for (``--rhyme loose``)."""
    out, i = [], 0
    while i < len(argv):
        words = spellings.get(argv[i])
        if words and i + 1 < len(argv) and argv[i + 1] in words:
            out += words[argv[i + 1]]
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def run(main, list_flags=(), bare_values=None, argv=None, spellings=None):
    """Run an absl ``main`` with the shared conventions above (exits the process, as absl does).

    ``bare_values`` maps a flag name to the value it takes when written
    without one (``--tones`` alone means ``--tones=loose``); ``argv``
    defaults to ``sys.argv`` (tests pass their own); ``spellings`` maps
    ``--flag`` to ``{word: [flags]}`` (see expand_spellings).
    """
    bare_values = bare_values or {}

    def parse(argv):
        argv = fill_bare_values(gather_list_flags(expand_spellings(argv, spellings or {}), set(list_flags)), bare_values)
        try:
            parsed = flags.FLAGS(argv)
        except flags.Error as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        except SystemExit:  # absl's --help prints the usage, then exits 1; asking for help is no failure
            if HELP_FLAGS & set(argv):
                sys.exit(0)
            raise
        # absl switches logging to INFO when --verbosity is not given, and TensorFlow
        # then logs a line per checkpoint save; stay at WARNING unless --debug or -v.
        if flags.FLAGS["verbosity"].using_default_value and not flags.FLAGS.debug:
            flags.FLAGS.verbosity = -1
        return parsed

    def guarded(argv):
        try:
            return main(argv)
        except PoetryError as error:
            if flags.FLAGS.debug:
                raise
            print(f"error: {error}", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        except KeyboardInterrupt:  # Ctrl-C outside train's own handler (or a second one)
            if flags.FLAGS.debug:
                raise
            print("interrupted", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)

    app.run(guarded, argv=argv, flags_parser=parse)
