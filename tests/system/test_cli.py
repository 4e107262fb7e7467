"""The entry points as a user runs them: exit codes and one-line errors."""

import re

from poetry_rnn.infra import cli
from poetry_rnn.training.train_options import TrainOptions
from conftest import run_module


def test_write_prints_one_poem_per_begin_character(tiny_model_dir):
    result = run_module("write", "--model_dir", tiny_model_dir, "--begin", "春", "花", "--seed", "1")
    assert result.returncode == 0, result.stderr
    # each poem under the subject it drew, when the tiny model's vocabulary holds one
    poems = [[line for line in poem.splitlines() if not line.startswith("《")]
             for poem in result.stdout.strip().split("\n\n")]
    assert len(poems) == 2 and poems[0][0].startswith("春") and poems[1][0].startswith("花")
    assert all(line[-1] in "，。？！" for line in poems[0][:-1])


def test_write_rejects_a_begin_character_outside_the_vocabulary(tiny_model_dir):
    result = run_module("write", "--model_dir", tiny_model_dir, "--begin", "龘")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "龘" in result.stderr and "Traceback" not in result.stderr


def test_train_with_a_missing_data_file_is_one_line(tmp_path):
    result = run_module("train", "--data", str(tmp_path / "missing.txt"), "--model_dir", str(tmp_path / "m"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and "missing.txt" in result.stderr


def flags_in_help(module):
    """``{flag: default as printed}`` from ``python -m poetry_rnn.<module> --help``."""
    result = run_module(module, "--help")
    assert result.returncode == 0, result.stderr
    blocks = re.split(r"^  --(?:\[no\])?(\w+):", result.stdout, flags=re.M)[1:]
    return {name: (re.findall(r"\(default: '(.*?)'\)", block) or [""])[0] for name, block in zip(blocks[::2], blocks[1::2])}


def test_train_and_compare_take_the_same_flags_from_the_same_fields():
    fields = [f for f in cli.option_fields(TrainOptions)]
    train_flags, compare_flags = flags_in_help("train"), flags_in_help("compare")
    for field in fields:
        assert field.name in train_flags, field.name
        assert train_flags[field.name] == ("" if field.default is None else str(field.default).replace("True", "true")
                                           .replace("False", "false")), field.name
        if field.name not in ("cell", "input", "samples"):  # compare's grid and its own --samples
            assert field.name in compare_flags, field.name
    assert compare_flags["units"] == "256" and compare_flags["corpus"] == "lyrics"  # compare's own budget
    evaluate_flags = flags_in_help("evaluate")
    for name in ("temperature", "top_k", "top_p", "best_of"):  # SamplingOptions' fields
        assert name in compare_flags and name in evaluate_flags, name
