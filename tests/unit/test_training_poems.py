import os
import subprocess
import sys

import numpy as np
import pytest

from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model import training_poems
from conftest import REPO


def test_it_holds_exactly_the_poems_it_was_given():
    known = training_poems.TrainingPoems.of(["白日依山尽，黄河入海流。", "张公吃酒李公醉。", "张公吃酒李公醉。"])
    assert len(known) == 2
    assert known.holds("张公吃酒李公醉。") and known.holds("白日依山尽，黄河入海流。")
    assert not known.holds("张公吃酒李公醉") and not known.holds("白日依山尽，黄河入海流。欲穷千里目，更上一层楼。")
    assert not training_poems.TrainingPoems([]).holds("张公吃酒李公醉。")
    assert training_poems.fingerprint("春") != training_poems.fingerprint("秋")


def test_a_fingerprint_is_the_contents_not_the_processs():
    # Python's own hash() of a str changes with PYTHONHASHSEED; a model folder's file must not
    code = "from poetry_rnn.model import training_poems as t; print(t.fingerprint('张公吃酒李公醉。'))"
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO,
                             env=dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=REPO)).stdout
        assert int(out) == training_poems.fingerprint("张公吃酒李公醉。")


def test_a_model_folder_keeps_them_and_a_new_run_adds_the_model_it_started_from(tmp_path):
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    assert training_poems.load(str(tmp_path / "first")) is None  # a model from before they were kept
    training_poems.record(str(tmp_path / "first"), ["甲乙。", "丙丁。"])
    training_poems.record(str(tmp_path / "second"), ["戊己。"], init_from=str(tmp_path / "first"))
    second = training_poems.load(str(tmp_path / "second"))
    assert len(second) == 3 and all(second.holds(c) for c in ("甲乙。", "丙丁。", "戊己。"))
    training_poems.record(str(tmp_path / "first"), ["庚辛。"], init_from=str(tmp_path / "missing"))  # none to inherit
    assert len(training_poems.load(str(tmp_path / "first"))) == 1


def test_a_damaged_or_foreign_file_is_a_clear_error(tmp_path):
    path = tmp_path / training_poems.FILE
    path.write_bytes(b"not numpy")
    with pytest.raises(PoetryError, match="cannot read .*training_poems.npy"):
        training_poems.load(str(tmp_path))
    np.save(path, np.zeros((2, 2), np.float32))
    with pytest.raises(PoetryError, match="is not a list of poem fingerprints"):
        training_poems.load(str(tmp_path))
