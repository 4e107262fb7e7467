"""One trainer per model directory (poetry_rnn.infra.lock): a second run is refused, a killed one leaves no lock."""

import os
import re
import signal

import pytest

from poetry_rnn.infra import lock
from poetry_rnn.training import trainer
from poetry_rnn.infra.errors import PoetryError
from conftest import synthetic_poems, write_poems
from test_faults import run_command, running, state, train_command, wait_for

REFUSED = r"{dir} is being trained by another run \(pid {pid}, started \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d \w*\); " \
          r"wait for it or use another --model_dir"


@pytest.fixture
def data(tmp_path):
    return write_poems(tmp_path / "poems.txt", synthetic_poems(120))


def test_a_second_run_on_a_held_folder_is_refused_at_once(data, tmp_path):
    model_dir = str(tmp_path / "m")
    with lock.hold(model_dir):
        with pytest.raises(PoetryError, match=REFUSED.format(dir=re.escape(model_dir), pid=os.getpid())):
            trainer.fit(data, model_dir, trainer.TrainOptions.of(units=8, embed_dim=4, layers=1, samples=0, quiet=True))
    assert os.listdir(model_dir) == []  # the refused run wrote nothing; the holder's train.pid went with it


def test_the_lock_is_released_when_the_run_ends_even_by_an_error(tmp_path):
    model_dir = str(tmp_path / "m")
    with pytest.raises(ZeroDivisionError), lock.hold(model_dir):
        assert os.path.exists(os.path.join(model_dir, lock.PID_FILE))
        1 / 0
    with lock.hold(model_dir):  # free again
        pass


def test_only_the_chief_takes_the_lock(tmp_path):
    model_dir = str(tmp_path / "m")
    with lock.hold(model_dir), lock.hold(model_dir, chief=False):
        pass  # a worker beside its chief is not refused


def test_two_real_trainers_the_second_refused_and_after_kill_9_a_rerun_resumes(data, tmp_path):
    model_dir = str(tmp_path / "m")
    command = train_command(data, model_dir, "--epochs", "1000", "--checkpoint_every", "2")
    with running(command, tmp_path / "first.log") as first:
        wait_for(lambda: state(model_dir)[0] > 0, first)
        second = run_command(command)
        assert second.returncode == 2, second.stderr
        assert "Traceback" not in second.stderr
        assert re.fullmatch("error: " + REFUSED.format(dir=re.escape(model_dir), pid=first.pid),
                            second.stderr.strip().splitlines()[-1]), second.stderr
        first.send_signal(signal.SIGKILL)
        first.wait()
    step = state(model_dir)[0]
    rerun = run_command(command + ["--max_steps", str(step + 1)])
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed from {model_dir}/ckpt/ckpt-{step}: step {step}," in rerun.stderr
    assert state(model_dir)[0] == step + 1
    assert lock.PID_FILE not in os.listdir(model_dir)


def test_compare_never_removes_or_resumes_a_folder_in_training(tmp_path):
    from poetry_rnn.evaluation import compare
    from test_lyrics import write_stream

    data = write_stream(tmp_path / "lyrics.txt")
    out = str(tmp_path / "out")
    options = trainer.TrainOptions.of(corpus="lyrics", epochs=1, units=8, embed_dim=4, layers=1, batch_size=4, num_steps=10,
                                      min_count=1, samples=0)
    grid = compare.CompareOptions(data=data, out=out, cells=["rnn"], inputs=["onehot"], samples=0)
    compare.compare(grid, options, log=lambda *a: None)
    held = os.path.join(out, compare.LOGS, "rnn-onehot")
    before = sorted(os.listdir(held))
    for overwrite in (False, True):
        with lock.hold(held), pytest.raises(PoetryError, match="is being trained by another run"):
            again = compare.CompareOptions(data=data, out=out, cells=["rnn"], inputs=["onehot"], overwrite=overwrite)
            compare.compare(again, options, log=lambda *a: None)
    assert sorted(os.listdir(held)) == before
