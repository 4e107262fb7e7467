"""Random flag values for ``write`` and the Python API: a poem, or one clear line.

The only outcomes allowed are poems (exit 0, non-empty output, valid JSON in
jsonl) or a one-line error (``PoetryError``; exit 2 and a single ``error:``
line on the command line): never a traceback, never empty output with exit 0.
"""

import contextlib
import io
import json
import math

import pytest
from absl import flags
from hypothesis import HealthCheck, example, given, settings, strategies as st

from poetry_rnn.infra import cli
from poetry_rnn import poet as poet_lib, write
from poetry_rnn.infra.errors import PoetryError

NUMBERS = ["nan", "inf", "-inf", "-1", "0", "0.5", "1", "3", "1e308", "99999999999999999999", "", "abc"]
TEXT = st.text(alphabet="春花秋月日红山夜龘aZ1?，。！ ", max_size=12)
FLAG_VALUES = {
    "temperature": st.sampled_from(NUMBERS),
    "top_k": st.sampled_from(NUMBERS),
    "top_p": st.sampled_from(NUMBERS),
    "num": st.sampled_from(["0", "1", "2", "-3", "100000", "x"]),
    "best_of": st.sampled_from(["0", "1", "2", "65", "nan"]),
    "seed": st.sampled_from(NUMBERS),
    "max_len": st.sampled_from(["0", "1", "7", "120", "100000", "-1"]),
    "form": st.sampled_from(["free", "wujue", "qijue", "wulv", "sonnet", ""]),
    "tones": st.sampled_from(["off", "loose", "strict", "wobbly"]),
    "tone_start": st.sampled_from(["ping", "ze", "random", "up"]),
    "begin": TEXT,
    "acrostic": TEXT,
    "template": TEXT,
    "format": st.sampled_from(["text", "jsonl"]),
    "scheme": st.sampled_from(["xinyun", "pingshui", "guangyun"]),
    "rhyme": st.sampled_from(["true", "false", "loose"]),
    "allow_repeats": st.sampled_from(["true", "false"]),
}


@pytest.fixture(scope="module")
def write_flags():
    if "begin" not in flags.FLAGS:
        write.define_flags()


def run_write(argv):
    """``python -m poetry_rnn.write argv`` in this process: (exit status, stdout, stderr)."""
    flags.FLAGS.unparse_flags()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.run(write.main, argv=["write", *argv], **write.CLI_CONVENTIONS)
        except SystemExit as stop:
            status = stop.code or 0
        else:
            status = 0
    return status, out.getvalue(), err.getvalue()


def no_nan(text):
    raise ValueError(f"{text} in JSON output")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(sorted(FLAG_VALUES)), st.none(), max_size=5).flatmap(
    lambda keys: st.fixed_dictionaries({k: FLAG_VALUES[k] for k in keys})))
@example({"temperature": "nan"})  # was: exit 0 and empty output
@example({"temperature": "nan", "format": "jsonl"})  # was: "mean_logprob": -Infinity, not JSON
@example({"top_p": "nan", "format": "jsonl"})
def test_write_flags_give_a_poem_or_one_line(write_flags, tiny_model_dir, values):
    argv = ["--model_dir", tiny_model_dir] + [f"--{k}={v}" for k, v in values.items()]
    status, out, err = run_write(argv)
    assert "Traceback" not in err
    if status == 0:
        assert out.strip(), (argv, err)
        if values.get("format") == "jsonl":
            for line in out.splitlines():
                json.loads(line, parse_constant=no_nan)
    else:
        assert status == 2, (argv, status, err)
        lines = [line for line in err.splitlines() if line]
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)


API_VALUES = {
    "temperature": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3), st.text(max_size=2)),
    "top_k": st.one_of(st.integers(-5, 10**12), st.floats(allow_nan=True)),
    "top_p": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()),
    "num": st.integers(-2, 3) | st.just(10**9),
    "best_of": st.integers(-1, 3) | st.just(10**6),
    "seed": st.one_of(st.integers(-(2**40), 2**40), st.none(), st.floats(allow_nan=True)),
    "max_len": st.integers(-1, 130) | st.just(10**12),
    "form": st.sampled_from(["free", "wujue", "qilv", "limerick", 3]),
    "rhyme": st.booleans() | st.just("yes"),
    "tones": st.sampled_from(["off", "loose", "strict", None]),
    "begin": TEXT | st.lists(TEXT, max_size=3),
    "acrostic": TEXT,
    "template": TEXT,
}


@pytest.fixture(scope="module")
def tiny_poet(tiny_model_dir):
    return poet_lib.load(tiny_model_dir)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(sorted(API_VALUES)), st.none(), max_size=5).flatmap(
    lambda keys: st.fixed_dictionaries({k: API_VALUES[k] for k in keys})))
def test_python_api_gives_poems_or_a_one_line_poetry_error(tiny_poet, options):
    try:
        poems = tiny_poet.write(**options)
    except PoetryError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert poems and all(p.text for p in poems)
    for poem in poems:
        json.dumps(poem.to_dict(), allow_nan=False)
        assert poem.mean_logprob is None or math.isfinite(poem.mean_logprob)
