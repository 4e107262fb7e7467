"""Option dataclasses that say once what each setting means, and check themselves.

A setting is declared once, as a dataclass field made by :func:`option`: its
default, its help text, and what values make sense (a range, a list of
choices). From that one declaration

* ``validate(self)`` in the dataclass's ``__post_init__`` refuses a bad
  value with a one-line :class:`PoetryError` that names the flag and the
  value (``--temperature must be a finite number >= 0, got nan``), for the
  command line and the Python API alike;
* ``cli.define_flags`` makes the absl flag (same name, default and help), so
  every entry point that takes the setting takes it the same way.

:class:`SamplingOptions` (how characters are drawn from the model) lives here
because ``write``, ``evaluate``, ``compare``, ``export``, the Python facade and
training-time samples all share it. This module imports no TensorFlow.
"""

import dataclasses
import math
import numbers

from poetry_rnn.errors import PoetryError


def option(default, help, *, choices=None, minimum=None, maximum=None, above=None, below=None, flag=True):
    """A dataclass field with its help text and the values it accepts.

    ``minimum``/``maximum`` are inclusive bounds, ``above``/``below``
    exclusive ones; ``choices`` a tuple of allowed strings; ``flag=False``
    keeps the field off the command line (set by code, not by users).
    """
    metadata = {"help": help, "choices": tuple(choices) if choices else None, "minimum": minimum,
                "maximum": maximum, "above": above, "below": below, "flag": flag}
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
    flag = f"--{name}" if meta["flag"] else name
    if meta.get("choices") is not None:
        if value not in meta["choices"]:
            raise PoetryError(f"{flag} must be one of {', '.join(meta['choices'])}, got {value!r}")
        return
    if kind is bool:
        if not isinstance(value, bool):
            raise PoetryError(f"{flag} must be true or false, got {value!r}")
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
            raise PoetryError(f"{flag} must be {describe_range(meta, integer)}, got {value!r}")
        return
    if kind is str and not isinstance(value, str):
        raise PoetryError(f"{flag} must be text, got {value!r}")
    if kind is list and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise PoetryError(f"{flag} must be a list of strings, got {value!r}")


def field_kind(field):
    """The field's declared type as a class (dataclass annotations may be strings)."""
    kind = field.type
    if isinstance(kind, str):
        kind = {"int": int, "float": float, "bool": bool, "str": str, "list": list}.get(kind, object)
    return kind


def validate(instance):
    """Check every field of an option dataclass that was declared with :func:`option`.

    A field whose default is None (meaning "not given", e.g. a random seed)
    accepts None.
    """
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        if "help" in field.metadata and not (value is None and field.default is None):
            check_value(field.name, value, field.metadata, field_kind(field))


def defaults(cls):
    """``{name: default}`` of a dataclass's fields (for documentation and tests)."""
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


@dataclasses.dataclass(frozen=True)
class SamplingOptions:
    """How each character is drawn from the model's distribution, and how drafts are ranked.

    The defaults were measured on 1,000 poems with rhyme in one ask against
    the real poems of the validation split (``benchmarks/poem_quality.py``):
    temperature 0.75, top-p 0.9, the best of 8 drafts with a novelty weight
    of 2 and a reuse penalty of 1.5 score 1.06x the real 七绝's 5-gram
    perplexity (166.4 against 157.0) with distinct-2 90.1 % (real 92.4 %),
    and 1.13x for 五律 (166.4 against 147.0) with 88.6 % (real 91.6 %); they
    copy no line. Before the reuse penalty the defaults (temperature 0.9)
    scored 1.13x / 86.9 % and 1.25x / 84.8 % (plain sampling at 0.8: 1.52x).
    The novelty term and the penalty only see the poems of one ask; a poem
    written alone is ranked by log-probability (docs/results.md has the
    settings tried).
    """

    temperature: float = option(0.75, "Sampling temperature; 0 = greedy.", minimum=0)
    top_k: int = option(0, "Sample among the k most likely characters (0 = all).", minimum=0, maximum=1_000_000)
    top_p: float = option(0.9, "Nucleus sampling: the smallest set of characters with this much probability (1 = off).",
                          above=0, maximum=1)
    best_of: int = option(8, "Draft this many candidates per poem and keep the best (see --novelty_weight).",
                          minimum=1, maximum=64)
    novelty_weight: float = option(
        2.0, "Ranking drafts: minus this times the share of a draft's bigrams already used by the poems chosen "
        "before it in the same batch (0 = rank by mean log-probability alone).", minimum=0)
    rhyme_bonus: float = option(
        1.0, "Ranking drafts of free poems: plus this when the even lines rhyme (300 free poems: 11.6 % rhyme "
        "without it, 61.0 % with 1, real poems 63.5 %).", minimum=0)
    keyword_bonus: float = option(
        3.0, "With --keywords: added to each keyword's logit until the poem holds it, a pull rather than a mask "
        "(0 = only a keywords model's prompt; the README's Keywords and titles has the rates).", minimum=0, maximum=100)
    title_bonus: float = option(
        3.0, "With --title: added to the logit of each of the title's characters until the poem holds it, in "
        "part for characters poets seldom write into the poem (咏, 赠; see titles.py), so any poem model writes "
        "towards its title (0 = only a title or keywords model's prompt).",
        minimum=0, maximum=100)
    line_end_bonus: float = option(
        1.0, "五言 forms: at the first line's last character, plus this times how readily each character "
        "ends a line (line_ends.py): the model cannot know yet that the line ends there (0 = off).",
        minimum=0, maximum=100)
    reuse_penalty: float = option(
        1.5, "Minus this from the logit of a character that would repeat a character pair an earlier poem of "
        "the same ask wrote (poems are written in rounds 1, 1, 2, 4, 8, ...; each round avoids the rounds "
        "before it): the model's favourite phrases would otherwise recur from poem to poem. A penalty, "
        "not a mask: the log-probabilities the ranking reads stay the model's own (0 = off).",
        minimum=0, maximum=100)
    seed: int = option(None, "Seed for reproducible poems (default: random, printed on stderr).", minimum=0,
                       maximum=2**31 - 1)

    def __post_init__(self):
        validate(self)
