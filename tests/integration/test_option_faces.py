"""An option means the same through every face, and a bad value is named as that face spells it."""

import pytest

from conftest import run_module
from poetry_rnn import poet as poet_lib
from poetry_rnn.infra import cli
from poetry_rnn.infra.errors import OptionError, PoetryError
from poetry_rnn.options import PoemOptions


@pytest.fixture(scope="module")
def poet(tiny_model_dir):
    return poet_lib.load(tiny_model_dir)


def test_tones_true_is_the_bare_flag_and_false_is_off(poet):
    asked = dict(form="wujue", rhyme=True, num=2, seed=4)
    assert [p.text for p in poet.write(tones=True, **asked)] == [p.text for p in poet.write(tones="loose", **asked)]
    assert PoemOptions(tones=False).tones == "off"
    assert cli.bare_values(PoemOptions) == {"tones": "loose"}


def test_free_heat_reaches_free_poems_and_only_them(poet):
    free, shaped = dict(num=3, seed=5, max_len=30), dict(form="wujue", num=3, seed=5)

    def texts(**asked):
        return [p.text for p in poet.write(**asked)]

    assert texts(temperature=0.8, free_heat=1.5, **free) == texts(temperature=1.2, free_heat=1.0, **free)
    assert texts(temperature=0.8, free_heat=1.5, **shaped) == texts(temperature=0.8, free_heat=1.0, **shaped)


@pytest.mark.parametrize("bad, named", [
    (dict(tones="maybe"), "keyword argument 'tones' must be one of off, loose, strict, got 'maybe'"),
    (dict(temperature=-1.0), "keyword argument 'temperature' must be a finite number >= 0, got -1.0"),
    (dict(keywords="春a"), "keyword argument 'keywords' takes Han characters, got 'a'"),
    (dict(title="春" * 40), "keyword argument 'title' takes at most 32 characters, got 40"),
])
def test_python_errors_name_the_keyword_argument(poet, bad, named):
    with pytest.raises(PoetryError) as error:
        poet.write(form="wujue", **bad)
    assert str(error.value) == named


def test_the_same_error_names_the_flag_on_the_command_line(tiny_model_dir):
    result = run_module("write", "--model_dir", tiny_model_dir, "--tones", "maybe")
    assert result.returncode != 0 and "--tones" in result.stderr and "keyword argument" not in result.stderr
    result = run_module("write", "--model_dir", tiny_model_dir, "--temperature=-1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: --temperature must be a finite number >= 0, got -1.0"


def test_an_option_error_respells_for_each_face():
    error = OptionError("top_p", "must be a finite number in (0, 1], got 2")
    assert str(error) == "--top_p must be a finite number in (0, 1], got 2"
    assert str(error.spoken_as("keyword")) == "keyword argument 'top_p' must be a finite number in (0, 1], got 2"
    assert str(error.spoken_as("json")) == "JSON field 'top_p' must be a finite number in (0, 1], got 2"
