"""Option fields that say once what each setting means, and check themselves.

A setting is declared once, as a dataclass field made by :func:`option`: its
default, its help text, and what values make sense (a range, a list of
choices). From that one declaration

* ``validate(self)`` in the dataclass's ``__post_init__`` refuses a bad
  value with a one-line :class:`PoetryError` that names the flag and the
  value (``--temperature must be a finite number >= 0, got nan``), for the
  command line and the Python API alike;
* ``cli.define_flags`` makes the absl flag (same name, default and help), so
  every entry point that takes the setting takes it the same way.

Every layer declares its settings this way (``ModelConfig``, ``TrainOptions``,
the poem and sampling options), so this module sits at the bottom, beside the
error type.
"""

import dataclasses
import math
import numbers

from poetry_rnn.infra.errors import OptionError


def option(default, help, *, choices=None, minimum=None, maximum=None, above=None, below=None, flag=True,
           neutral=None, aliases=None, words=None):
    """A dataclass field with its help text and the values it accepts.

    ``minimum``/``maximum`` are inclusive bounds, ``above``/``below``
    exclusive ones; ``choices`` a tuple of allowed strings; ``flag=False``
    keeps the field off the command line (set by code, not by users);
    ``neutral`` is the value that turns a knob off (a sampling setting's
    processor takes it where none is given); ``aliases`` maps a bool to the
    choice it stands for (``tones=True`` is ``tones="loose"``, as a bare
    ``--tones`` is); ``words`` makes a text field that takes those words or a
    whole number within the bounds (``--couplets draw`` or ``--couplets 4``;
    ``couplets=4`` from Python or JSON is kept as "4", as the flag gives it).
    """
    metadata = {"help": help, "choices": tuple(choices) if choices else None, "minimum": minimum,
                "maximum": maximum, "above": above, "below": below, "flag": flag, "neutral": neutral,
                "aliases": aliases or {}, "words": tuple(words) if words else None}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def describe_range(meta, integer):
    """'a finite number >= 0', 'a whole number >= 1', 'a finite number in (0, 1]', ..."""
    kind = "a whole number" if integer else "a finite number"
    low = (">", meta["above"]) if meta["above"] is not None else (">=", meta["minimum"])
    high = ("<", meta["below"]) if meta["below"] is not None else ("<=", meta["maximum"])
    if low[1] is not None and high[1] is not None:
        return f"{kind} in {'(' if low[0] == '>' else '['}{low[1]}, {high[1]}{')' if high[0] == '<' else ']'}"
    if low[1] is not None:
        return f"{kind} {low[0]} {low[1]}"
    if high[1] is not None:
        return f"{kind} {high[0]} {high[1]}"
    return kind


def check_value(name, value, meta, kind):
    """Refuse ``value`` for field ``name`` unless it fits ``meta`` and the field's type ``kind``."""
    face = "flag" if meta["flag"] else "plain"
    if meta.get("words"):
        digits = isinstance(value, str) and value.isascii() and value.isdigit()  # "²".isdigit() too
        number = digits and meta["minimum"] <= int(value) <= meta["maximum"]
        if value not in meta["words"] and not number:
            raise OptionError(name, f"must be {' or '.join(meta['words'])} or {describe_range(meta, True)}, "
                              f"got {value!r}", face)
        return
    if meta.get("choices") is not None:
        if value not in meta["choices"]:
            raise OptionError(name, f"must be one of {', '.join(meta['choices'])}, got {value!r}", face)
        return
    if kind is bool:
        if not isinstance(value, bool):
            raise OptionError(name, f"must be true or false, got {value!r}", face)
        return
    if kind in (int, float):
        integer = kind is int
        ok_type = isinstance(value, numbers.Integral if integer else numbers.Real) and not isinstance(value, bool)
        finite = ok_type and math.isfinite(value)
        low_ok = finite and (meta["above"] is None or value > meta["above"]) and (
            meta["minimum"] is None or value >= meta["minimum"])
        high_ok = finite and (meta["below"] is None or value < meta["below"]) and (
            meta["maximum"] is None or value <= meta["maximum"])
        if not (low_ok and high_ok):
            raise OptionError(name, f"must be {describe_range(meta, integer)}, got {value!r}", face)
        return
    if kind is str and not isinstance(value, str):
        raise OptionError(name, f"must be text, got {value!r}", face)
    if kind is list and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise OptionError(name, f"must be a list of strings, got {value!r}", face)


def field_kind(field):
    """The field's declared type as a class (dataclass annotations may be strings)."""
    kind = field.type
    if isinstance(kind, str):
        kind = {"int": int, "float": float, "bool": bool, "str": str, "list": list}.get(kind, object)
    return kind


def validate(instance):
    """Check every field of an option dataclass that was declared with :func:`option`.

    A field whose default is None (meaning "not given", e.g. a random seed)
    accepts None; a bool that the field's ``aliases`` name becomes its choice,
    and a whole number given to a field of ``words`` its text.
    """
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        aliases = field.metadata.get("aliases") or {}
        if isinstance(value, bool) and value in aliases:
            value = aliases[value]
            object.__setattr__(instance, field.name, value)  # frozen dataclasses too
        elif field.metadata.get("words") and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
            object.__setattr__(instance, field.name, value)
        if "help" in field.metadata and not (value is None and field.default is None):
            check_value(field.name, value, field.metadata, field_kind(field))


def defaults(cls):
    """``{name: default}`` of a dataclass's fields (for documentation and tests)."""
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
