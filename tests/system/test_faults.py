"""Training under faults: kill -9, Ctrl-C, a NaN loss, an unwritable or full model_dir.

What makes kill -9 safe (read in TensorFlow's source, 2.21):

* ``tf.train.CheckpointManager.save`` writes the tensors through the V2
  saver: each shard goes to ``<prefix>_temp/part-*`` (the bundle writer
  itself writes ``*.tempstate<random>`` and renames), then
  ``MergeV2Checkpoints`` renames the data files to ``ckpt-N.data-*`` and
  writes the merged ``ckpt-N.index`` -- that last file is written in place,
  so a kill at that moment can leave a half-written ``ckpt-N.index``;
* only after the merge returns does the manager record ``ckpt-N`` in the
  ``checkpoint`` state file, with ``file_io.atomic_write_string_to_file``
  (a temporary file, then a rename: checkpoint_management.py,
  update_checkpoint_state_internal), before deleting old checkpoints.

So the state file only ever names complete checkpoints: a kill during a
save leaves at most unreferenced pieces (``ckpt-N_temp/``, a partial
``ckpt-N.*``), which the next save of step N overwrites. The tests below
kill real training processes at random moments and check exactly that.
"""

import contextlib
import dataclasses
import glob
import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from poetry_rnn.corpus import split
from poetry_rnn.corpus import reading
from poetry_rnn.training import dataset, steps, trainer
from poetry_rnn.model import store
from poetry_rnn.verse import poem_request, validator
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model.vocab import Vocab
from conftest import REPO, run_module, synthetic_poems, write_poems
from test_bad_input import FileSizeLimit

TINY = ["--units", "16", "--embed_dim", "8", "--layers", "1", "--batch_size", "8", "--samples", "0"]
EVERY = 2  # --checkpoint_every


def train_command(data, model_dir, *extra):
    return [sys.executable, "-m", "poetry_rnn.train", "--data", data, "--model_dir", model_dir, *TINY, *extra]


ENV = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")


def start(command, log):
    """Start a training process of our own (stderr to ``log``); kill only these."""
    handle = open(log, "w")
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=handle, cwd=REPO, env=ENV), handle


@contextlib.contextmanager
def running(command, log):
    """A training process of our own (stderr to ``log``), killed and waited for if it outlives the block."""
    process, handle = start(command, log)
    try:
        yield process
    finally:
        handle.close()
        if process.poll() is None:
            process.kill()
            process.wait()


def run_command(command):
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=ENV, timeout=300)


def state(model_dir):
    """(latest step, all steps) named by the checkpoint state file, or (0, []).

    Read by hand rather than with tf.train.get_checkpoint_state: it is polled
    in a tight loop while the trainer writes it (atomically, by rename).
    """
    try:
        with open(os.path.join(store.checkpoint_dir(model_dir), "checkpoint")) as handle:
            text = handle.read()
    except FileNotFoundError:
        return 0, []
    latest = re.search(r'^model_checkpoint_path: "ckpt-(\d+)"$', text, re.M)
    assert latest, f"unreadable state file: {text!r}"
    return int(latest.group(1)), [int(n) for n in re.findall(r'^all_model_checkpoint_paths: "ckpt-(\d+)"$', text, re.M)]


def wait_for(condition, process, timeout=120, poll=0.02):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"training exited early with {process.returncode}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(poll)


def checkpoint_step(prefix):
    """The step variable stored in a checkpoint, reading every tensor on the way."""
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
        reader.get_tensor(name)  # a half-written file fails here
    return int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))


def logged_steps(model_dir):
    """The last training step whose loss reached TensorBoard (events are flushed every few steps)."""
    last = 0
    for path in glob.glob(os.path.join(model_dir, "logs", "train", "events.out.tfevents*")):
        try:
            for event in tf.compat.v1.train.summary_iterator(path):
                if any(v.tag == "loss" for v in event.summary.value):
                    last = max(last, event.step)
        except tf.errors.DataLossError:  # the record being written when the process died
            pass
    return last


def debris(model_dir):
    """Files a save interrupted by the kill left behind (never named by the state file)."""
    folder = store.checkpoint_dir(model_dir)
    _, named = state(model_dir)
    pieces = []
    for path in glob.glob(os.path.join(folder, "*")):
        name = os.path.basename(path)
        match = re.match(r"ckpt-(\d+)(_temp|\.index|\.data-.*)$", name)
        if name.startswith("checkpoint.tmp") or (match and int(match.group(1)) not in named):
            pieces.append(name)
    return sorted(pieces)


def batches_per_epoch(data, batch_size=8):
    poems, _ = reading.read_poems(data)
    vocab = Vocab.build(p.content for p in poems)
    train_poems, _ = split.split_train_valid(poems, trainer.TrainOptions().valid_fraction)
    return dataset.poem_dataset(dataset.encode_poems(train_poems, vocab), batch_size).batches_per_epoch


@pytest.fixture
def data(tmp_path):
    return write_poems(tmp_path / "poems.txt", synthetic_poems(200))


def test_kill_9_at_random_moments_always_resumes_from_the_latest_checkpoint(data, tmp_path):
    """Four kills: two at random moments, two while a checkpoint is being saved."""
    model_dir = str(tmp_path / "m")
    epochs = 4
    command = train_command(data, model_dir, "--epochs", str(epochs), "--checkpoint_every", str(EVERY), "--keep_checkpoints", "3")
    rng = random.Random(8)
    kills, landed_in_save, previous = 4, 0, 0
    for run in range(kills):
        process, log = start(command, tmp_path / f"run{run}.log")
        try:
            # Wait until this run has saved a checkpoint of its own (it has resumed and
            # cleaned up by then), then kill it at a random moment, or in a save.
            wait_for(lambda: state(model_dir)[0] > previous, process)
            if run % 2:
                wait_for(lambda: debris(model_dir), process, poll=0)
            else:
                time.sleep(rng.uniform(0, 0.3))
            process.send_signal(signal.SIGKILL)
            process.wait()
        finally:
            log.close()
            if process.poll() is None:
                process.kill()
                process.wait()
        stderr = open(tmp_path / f"run{run}.log").read()
        assert process.returncode == -signal.SIGKILL, stderr
        latest, named = state(model_dir)
        if run:  # it picked up where the last one stopped
            assert f"resumed from {store.checkpoint_dir(model_dir)}/ckpt-{previous}: step {previous}," in stderr
        # The latest checkpoint is whole and holds its own step; so is every older one the
        # state names, unless a kill mid-sweep already deleted it (.index goes first).
        for step in named:
            prefix = os.path.join(store.checkpoint_dir(model_dir), f"ckpt-{step}")
            if step == latest or os.path.exists(prefix + ".index"):
                assert checkpoint_step(prefix) == step
        assert latest > previous and (latest % EVERY == 0 or latest % batches_per_epoch(data) == 0)
        # At most one interval of work is lost (the last logged step is a lower bound on the real one).
        assert logged_steps(model_dir) - latest <= EVERY, (logged_steps(model_dir), latest)
        pieces = debris(model_dir)
        landed_in_save += bool(pieces)
        print(f"kill {run + 1}: latest ckpt-{latest}, last logged step {logged_steps(model_dir)}, left behind {pieces}")
        previous = latest
    print(f"{landed_in_save} of {kills} kills landed during a checkpoint save")
    assert landed_in_save >= 1  # (the save may finish between seeing it and the kill landing)

    finished = run_command(command)
    assert finished.returncode == 0, finished.stderr
    assert f"ckpt-{previous}: step {previous}," in finished.stderr
    final = tf.train.latest_checkpoint(store.checkpoint_dir(model_dir))
    assert checkpoint_step(final) == epochs * batches_per_epoch(data)  # as many steps as an uninterrupted run
    assert debris(model_dir) == []  # temp folders removed at start, partial ckpt-N rewritten, then swept

    result = run_module("write", "--model_dir", model_dir, "--form", "wujue", "--seed", "3")
    assert result.returncode == 0, result.stderr
    content = "".join(result.stdout.split())
    assert validator.check_poem(content, poem_request.PoemRequest(form="wujue")) == []


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_ctrl_c_or_sigterm_saves_says_one_line_and_the_restart_resumes(data, tmp_path, stop):
    model_dir = str(tmp_path / "m")
    command = train_command(data, model_dir, "--epochs", "100", "--checkpoint_every", "5")
    with running(command, tmp_path / "run.log") as process:
        wait_for(lambda: state(model_dir)[0] > 0, process)
        process.send_signal(stop)
        process.wait(timeout=60)
    stderr = open(tmp_path / "run.log").read()
    # 128 + the signal (130, 143): scripts (`train && write`) must not take it for a finished run.
    assert process.returncode == 128 + stop, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    saved = re.fullmatch(r"interrupted at step (\d+); saved (.*ckpt-(\d+))", lines[-1])
    assert saved and saved.group(1) == saved.group(3) and "Traceback" not in stderr, stderr
    step = int(saved.group(1))
    assert state(model_dir)[0] == step and checkpoint_step(saved.group(2)) == step

    resumed = run_command(command + ["--max_steps", str(step + 3)])
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {saved.group(2)}: step {step}," in resumed.stderr
    assert state(model_dir)[0] == step + 3


def test_nan_loss_on_the_command_line_is_one_line_and_keeps_the_checkpoint(data, tmp_path):
    model_dir = str(tmp_path / "m")
    options = trainer.TrainOptions.of(units=16, embed_dim=8, layers=1, batch_size=8, samples=0, quiet=True)
    trainer.fit(data, model_dir, dataclasses.replace(options, max_steps=2))
    folder = store.checkpoint_dir(model_dir)
    before = {p: open(p, "rb").read() for p in glob.glob(os.path.join(folder, "*"))}
    result = run_module(
        "train", "--data", data, "--model_dir", model_dir, *TINY,
        "--optimizer", "sgd", "--learning_rate", "1e38", "--clip_norm", "0",
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"error: (loss|gradient norm) became (nan|inf) at step (\d+); kept the last good checkpoint \(.*ckpt-2\); "
        r"lower --learning_rate or set --clip_norm", last,
    ), last
    assert int(re.search(r"at step (\d+)", last).group(1)) > 2
    assert {p: open(p, "rb").read() for p in glob.glob(os.path.join(folder, "*"))} == before
    assert all(np.isfinite(v.numpy()).all() for v in store.load(model_dir).model.weights)


def test_a_non_finite_gradient_stops_before_it_is_saved(data, tmp_path, monkeypatch):
    """Inf gradients with a finite loss still poison the weights: stop at that step."""
    model_dir = str(tmp_path / "m")
    real = steps.make_steps

    def steps_with_an_inf_norm_at_step_3(model, optimizer, strategy, objective):
        train_step, eval_step = real(model, optimizer, strategy, objective)
        calls = {"n": 0}

        def poisoned(batch):
            metrics, final = train_step(batch)
            calls["n"] += 1
            if calls["n"] == 3:
                for v in model.trainable_variables:
                    v.assign(tf.fill(v.shape, np.nan))
                return (*metrics[:4], tf.constant(np.inf)), final
            return metrics, final

        return poisoned, eval_step

    monkeypatch.setattr(steps, "make_steps", steps_with_an_inf_norm_at_step_3)
    options = trainer.TrainOptions.of(units=16, embed_dim=8, layers=1, batch_size=8, samples=0, quiet=True, checkpoint_every=1)
    with pytest.raises(trainer.TrainingDiverged, match=r"gradient norm became inf at step 3; kept the last good checkpoint \(.*ckpt-2\)"):
        trainer.fit(data, model_dir, options)
    assert state(model_dir)[0] == 2
    assert all(np.isfinite(v.numpy()).all() for v in store.load(model_dir).model.weights)


# --------------------------------------------------------------------------
# A model_dir that cannot be written, or a disk that fills up


def test_unwritable_model_dir_fails_before_training(data, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    # Tests may run as root, for whom chmod does not stop writes: a parent that
    # is a regular file fails for everyone.
    with pytest.raises(PoetryError, match="cannot write to model directory .*a-file/m: Not a directory"):
        trainer.fit(data, str(blocker / "m"), trainer.TrainOptions.of(units=16, embed_dim=8, layers=1, quiet=True))
    with pytest.raises(PoetryError, match="cannot write to model directory .*a-file: File exists"):
        trainer.fit(data, str(blocker), trainer.TrainOptions.of(units=16, embed_dim=8, layers=1, quiet=True))
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(PoetryError, match="Permission denied"):
            trainer.fit(data, str(locked), trainer.TrainOptions.of(units=16, embed_dim=8, layers=1, quiet=True))


def test_a_full_disk_is_found_before_training_and_during_it(data, tmp_path):
    model_dir = str(tmp_path / "m")
    big = trainer.TrainOptions.of(units=256, embed_dim=8, layers=1, batch_size=16, samples=0, quiet=True, checkpoint_every=2)
    with FileSizeLimit(512 * 1024), pytest.raises(PoetryError, match="cannot write to model directory .*: File too large"):
        trainer.fit(data, model_dir, big)  # the 1 MB probe fails: nothing trained, no probe left behind
    assert os.listdir(model_dir) == []
    trainer.fit(data, model_dir, dataclasses.replace(big, max_steps=2))
    assert os.path.getsize(glob.glob(f"{model_dir}/ckpt/ckpt-2.data-*")[0]) > 2 * 2**20  # bigger than the limit below
    full = r"cannot save a checkpoint at step 4 .*: File too large; the latest checkpoint is still .*ckpt-2$"
    with FileSizeLimit(3 * 2**19), pytest.raises(PoetryError, match=full):
        trainer.fit(data, model_dir, big)  # the probe passes, the next checkpoint does not fit
    assert state(model_dir) == (2, [2])
    assert checkpoint_step(os.path.join(model_dir, "ckpt", "ckpt-2")) == 2


def test_max_steps_stops_with_one_line_and_a_resumed_run_trains_no_step_more(data, tmp_path, capsys):
    model_dir = str(tmp_path / "m")
    options = trainer.TrainOptions.of(units=16, embed_dim=8, layers=1, batch_size=8, samples=0, max_steps=3, checkpoint_every=100)
    saved = os.path.join(store.checkpoint_dir(model_dir), "ckpt-3")
    assert trainer.fit(data, model_dir, options).step == 3
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"stopped at step 3 (--max_steps); saved {saved}"
    assert trainer.fit(data, model_dir, options).step == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert any(line.startswith(f"resumed from {saved}: step 3,") for line in err)
    assert err[-1] == f"stopped at step 3 (--max_steps); the latest checkpoint is {saved}"
    assert state(model_dir) == (3, [3])
