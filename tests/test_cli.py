"""The entry points as a user runs them: exit codes and one-line errors."""

from conftest import run_module


def test_write_prints_one_poem_per_begin_character(tiny_model_dir):
    result = run_module("write", "--model_dir", tiny_model_dir, "--begin", "春", "花", "--seed", "1")
    assert result.returncode == 0, result.stderr
    poems = result.stdout.strip().split("\n\n")
    assert len(poems) == 2 and poems[0].startswith("春") and poems[1].startswith("花")
    assert all(line[-1] in "，。？！" for line in poems[0].splitlines()[:-1])


def test_write_rejects_a_begin_character_outside_the_vocabulary(tiny_model_dir):
    result = run_module("write", "--model_dir", tiny_model_dir, "--begin", "龘")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "龘" in result.stderr and "Traceback" not in result.stderr


def test_train_with_a_missing_data_file_is_one_line(tmp_path):
    result = run_module("train", "--data", str(tmp_path / "missing.txt"), "--model_dir", str(tmp_path / "m"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and "missing.txt" in result.stderr
