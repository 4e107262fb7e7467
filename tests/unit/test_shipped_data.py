"""The shipped data/poems.txt is what prepare builds from the corpus, byte for byte, and train finds it."""

import os

import pytest

from conftest import REPO, SHARED_CORPUS, run_module
from poetry_rnn.corpus import prepare

CORPUS = os.path.join(SHARED_CORPUS, "quan_tang_shi")
SHIPPED = os.path.join(REPO, "data", "poems.txt")


@pytest.mark.skipif(not os.path.isdir(CORPUS), reason=f"no corpus at {SHARED_CORPUS} (set $POETRY_RNN_CORPUS)")
def test_prepare_rebuilds_the_shipped_poems_byte_for_byte(tmp_path):
    out = tmp_path / "poems.txt"
    prepare.prepare_poems(CORPUS, out)
    with open(SHIPPED, "rb") as shipped:
        assert out.read_bytes() == shipped.read()


def test_the_shipped_poems_are_there_and_clean():
    with open(SHIPPED, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    assert lines[-1] == "" and len(lines) > 50_000
    assert all(line.count(":") == 1 and line.split(":")[1] for line in lines[:-1])


def test_train_names_the_command_that_builds_missing_data(tmp_path):
    result = run_module("train", "--cell", "lstm", "--model_dir", str(tmp_path / "m"), cwd=tmp_path)
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: file not found: data/poems.txt; build it with: python -m poetry_rnn.prepare")


@pytest.mark.parametrize("model, data", [("", "poems.txt"), ("ci", "ci.txt")])
def test_the_shipped_models_know_the_poems_they_trained_on(tmp_path, model, data):
    from poetry_rnn.model import training_poems

    default = os.path.join(REPO, "checkpoints", "default")
    shipped = training_poems.load(os.path.join(default, model))
    # the ci model started from the Tang model, whose weights learned its poems too
    training_poems.record_split(str(tmp_path), os.path.join(REPO, "data", data), 0.02,
                                init_from=default if model else "")
    rebuilt = training_poems.load(str(tmp_path))
    assert len(shipped) == len(rebuilt) > 50_000
    assert (shipped.fingerprints == rebuilt.fingerprints).all()
    assert shipped.holds("张公吃酒李公醉。")  # a Tang training poem (武后时谣): the ci model's weights learned it too
