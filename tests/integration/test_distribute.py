"""tf.distribute: several replicas must train exactly like one device on the same global batch.

Logical CPU devices have to be configured before TensorFlow initialises its
devices, so the mirrored checks run in a fresh process: this file run as a
script (``python tests/integration/test_distribute.py mirrored``) prints a JSON report
that the test reads. The multi-worker test starts two ``poetry_rnn.train``
processes on 127.0.0.1 with ``TF_CONFIG``.

Tolerances: both sides run the same float32 arithmetic except the order of
summation (two partial sums all-reduced, against one sum), which moves each
result by a few float32 ulps (~1e-7 relative); Adam's updates are bounded
by the learning rate, so after a handful of steps the weights agree to
~1e-7. We allow 1e-5 (weights, absolute) and 1e-5 (losses, relative): two
orders of magnitude of headroom, while the bugs these tests guard against
(a per-replica mean instead of the global one, clipping before the
all-reduce, gradients summed twice) move losses by 1e-2..1 and weights by
1e-3..1e-1.
"""

import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, synthetic_poems, write_poems

pytestmark = pytest.mark.distributed

HERE = os.path.abspath(__file__)
WEIGHT_TOL = 1e-5
LOSS_RTOL = 1e-5


def _env(**extra):
    return dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.path.join(REPO, "tests"), TF_CPP_MIN_LOG_LEVEL="3", **extra)


def _run_script(*args, timeout=240):
    result = subprocess.run([sys.executable, HERE, *args], capture_output=True, text=True, env=_env(), timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def mirrored_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mirrored")
    return _run_script("mirrored", str(folder))


def test_mirrored_steps_match_one_device_on_uneven_splits_with_clipping(mirrored_report):
    steps = mirrored_report["steps"]
    assert steps["replicas"] == 2
    # Batches of 5, 7, 3, 1 and 6 poems: splits 3+2, 4+3, 2+1, 1+0 (an empty replica), 3+3.
    for one, two in zip(steps["single"], steps["mirrored"]):
        np.testing.assert_allclose(two, one, rtol=LOSS_RTOL)
    # The clip (0.05) is below every step's gradient norm, so it acted each step.
    assert min(row[4] for row in steps["single"]) > 0.05
    assert steps["max_weight_diff"] < WEIGHT_TOL


def test_mirrored_fit_matches_one_device(mirrored_report):
    fit = mirrored_report["fit"]
    np.testing.assert_allclose(fit["mirrored"]["train_loss"], fit["single"]["train_loss"], rtol=LOSS_RTOL)
    np.testing.assert_allclose(fit["mirrored"]["valid_perplexity"], fit["single"]["valid_perplexity"], rtol=LOSS_RTOL)
    assert fit["mirrored"]["step"] == fit["single"]["step"]
    assert fit["max_weight_diff"] < WEIGHT_TOL


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


TRAIN_ARGS = ["--units", "16", "--embed_dim", "8", "--layers", "1", "--batch_size", "16", "--epochs", "1", "--samples", "0",
              "--checkpoint_every", "5"]


def test_two_workers_train_together_and_the_chief_checkpoint_restores(tmp_path):
    from poetry_rnn.model import store
    from poetry_rnn.training import trainer

    data = write_poems(tmp_path / "poems.txt", synthetic_poems(150, seed=4))
    model_dir, scratch = tmp_path / "model", tmp_path / "tmp"
    scratch.mkdir()
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "poetry_rnn.train", "--data", data, "--model_dir", str(model_dir),
             "--strategy", "multiworker", *TRAIN_ARGS],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env=_env(TF_CONFIG=config, TMPDIR=str(scratch)),
        ))
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=240))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    # Both workers report the global loss of the same steps.
    losses = [float(re.search(r"epoch 1/1: train loss ([\d.]+)", err).group(1)) for _, err in outputs]
    assert losses[0] == losses[1]
    # The chief's checkpoint restores; the other worker left nothing behind.
    loaded = store.load(str(model_dir))
    assert loaded.config.units == 16
    assert sorted(os.listdir(model_dir)) == ["ckpt", "config.json", "logs", "training_poems.npy", "vocab.txt"]
    assert not [name for name in os.listdir(scratch) if name.startswith("poetry_rnn_worker")]
    # Two workers on the global batch of 16 train like one process on it.
    single = trainer.fit(data, str(tmp_path / "single"), trainer.TrainOptions.of(
        units=16, embed_dim=8, layers=1, batch_size=16, epochs=1, samples=0, quiet=True))
    assert abs(single.train_loss[0] - losses[0]) < 2e-3  # the log prints 3 decimals


# --------------------------------------------------------------------------
# The subprocess side: python tests/integration/test_distribute.py mirrored OUT_DIR


def _batches():
    rng = np.random.default_rng(0)
    batches = []
    for size, time in [(5, 7), (7, 4), (3, 9), (1, 5), (6, 6)]:
        x = rng.integers(5, 30, (size, time + 1)).astype(np.int32)
        lengths = rng.integers(1, time + 1, size).astype(np.int32)
        for i, n in enumerate(lengths):
            x[i, n + 1:] = 0
        batches.append((x[:, :-1], x[:, 1:], lengths))
    return batches


def _compare_steps(tf, keras, distribution, steps, ModelConfig, PoetryModel):
    config = ModelConfig(vocab_size=30, units=16, embed_dim=8, layers=2)
    keras.utils.set_random_seed(0)
    start = [v.numpy() for v in PoetryModel(config).weights]

    def run(strategy):
        with strategy.scope():
            model = PoetryModel(config)
            for variable, value in zip(model.weights, start):
                variable.assign(value)
            optimizer = keras.optimizers.Adam(1e-2, global_clipnorm=0.05)
            optimizer.build(model.trainable_variables)
        step, _ = steps.make_steps(model, optimizer, strategy)
        rows = []
        for batch in _batches():
            for distributed in distribution.distribute(strategy, tf.data.Dataset.from_tensors(batch)):
                rows.append([float(v) for v in step(distributed)[0]])
        return model, rows

    single, single_rows = run(tf.distribute.OneDeviceStrategy("/cpu:0"))
    strategy = distribution.make_strategy("mirrored")
    mirrored, mirrored_rows = run(strategy)
    return {
        "replicas": strategy.num_replicas_in_sync,
        "single": single_rows,
        "mirrored": mirrored_rows,
        "max_weight_diff": max(float(np.max(np.abs(a.numpy() - b.numpy()))) for a, b in zip(single.weights, mirrored.weights)),
    }


def _compare_fit(out, tf, trainer, store):
    data = write_poems(os.path.join(out, "poems.txt"), synthetic_poems(90, seed=2))
    results, weights = {}, {}
    for name in ("single", "mirrored"):
        options = trainer.TrainOptions.of(units=16, embed_dim=8, layers=1, batch_size=7, epochs=2, samples=0, quiet=True,
                                     valid_fraction=0.1, clip_norm=0.5, strategy="default" if name == "single" else name,
                                     mixed_precision="off")  # float32 on every CPU: bf16 would differ by rounding alone
        history = trainer.fit(data, os.path.join(out, name), options)
        results[name] = {"train_loss": history.train_loss, "valid_perplexity": history.valid_perplexity, "step": history.step}
        weights[name] = [v.numpy() for v in store.load(os.path.join(out, name)).model.weights]
    results["max_weight_diff"] = max(float(np.max(np.abs(a - b))) for a, b in zip(weights["single"], weights["mirrored"]))
    return results


def _mirrored_main(out):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    from poetry_rnn.training import distribution, steps, trainer
    from poetry_rnn.model import store
    from poetry_rnn.model.network import ModelConfig, PoetryModel

    report = {"steps": _compare_steps(tf, keras, distribution, steps, ModelConfig, PoetryModel), "fit": _compare_fit(out, tf, trainer, store)}
    print(json.dumps(report))


if __name__ == "__main__":
    if sys.argv[1:2] == ["mirrored"] and len(sys.argv) == 3:
        _mirrored_main(sys.argv[2])
    else:
        sys.exit("usage: python tests/integration/test_distribute.py mirrored OUT_DIR")
