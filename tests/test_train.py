import json
import os

import numpy as np
import pytest
import tensorflow as tf

from poetry_rnn import modeldir, train
from poetry_rnn.errors import PoetryError
from poetry_rnn.model import ModelConfig, PoetryModel
from conftest import synthetic_poems, write_poems

TINY = dict(units=24, embed_dim=8, layers=1, batch_size=16, samples=0, quiet=True)


def test_loss_falls_and_the_model_dir_is_complete(tmp_path):
    # Twelve poems repeated: learnable, unlike random characters.
    data = write_poems(tmp_path / "poems.txt", synthetic_poems(12) * 20)
    history = train.fit(data, str(tmp_path / "m"), train.TrainOptions(epochs=12, learning_rate=2e-2, valid_fraction=0, **TINY))
    assert history.train_loss[-1] < 0.7 * history.train_loss[0]
    assert all(0 <= p < 0.15 for p in history.padding_fraction)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model"]["units"] == 24 and config["train"]["epochs"] == 12
    assert os.listdir(tmp_path / "m" / "logs" / "train")


def test_rerunning_resumes_from_the_saved_step(tmp_path, poems_file):
    model_dir = str(tmp_path / "m")
    first = train.fit(poems_file, model_dir, train.TrainOptions(epochs=1, **TINY))
    second = train.fit(poems_file, model_dir, train.TrainOptions(epochs=2, **TINY))
    assert second.step == 2 * first.step  # one more epoch, not a fresh start
    assert len(second.train_loss) == 1


def test_resume_inside_an_epoch_continues_its_batches(tmp_path, poems_file):
    model_dir = str(tmp_path / "m")
    stopped = train.fit(poems_file, model_dir, train.TrainOptions(epochs=1, max_steps=5, **TINY))
    assert stopped.step == 5
    whole = train.fit(poems_file, model_dir, train.TrainOptions(epochs=1, **TINY))
    reference = train.fit(poems_file, str(tmp_path / "ref"), train.TrainOptions(epochs=1, **TINY))
    assert whole.step == reference.step


def test_train_step_traces_once_for_all_batch_shapes():
    model = PoetryModel(ModelConfig(vocab_size=20, units=8, embed_dim=4, layers=1))
    optimizer = tf.keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    step, _ = train.make_steps(model, optimizer, tf.distribute.get_strategy())
    for batch, time in [(4, 7), (3, 12), (5, 30), (2, 3)]:
        x = tf.random.uniform((batch, time), 1, 20, tf.int32)
        step((x, x, tf.fill([batch], time)))
    assert step.experimental_get_tracing_count() == 1


def test_a_different_vocabulary_is_refused(tmp_path, poems_file):
    model_dir = str(tmp_path / "m")
    train.fit(poems_file, model_dir, train.TrainOptions(epochs=1, max_steps=1, **TINY))
    other = write_poems(tmp_path / "other.txt", [("t", "天地玄黄宇宙洪荒，日月盈昃辰宿列张。")] * 5)
    with pytest.raises(PoetryError, match="different vocabulary.*fingerprint.*use a new --model_dir"):
        train.fit(other, model_dir, train.TrainOptions(epochs=1, min_count=1, **TINY))


def test_a_different_model_shape_is_refused(tmp_path, poems_file):
    model_dir = str(tmp_path / "m")
    train.fit(poems_file, model_dir, train.TrainOptions(epochs=1, max_steps=1, **TINY))
    with pytest.raises(PoetryError, match="units=48 \\(saved 24\\)"):
        train.fit(poems_file, model_dir, train.TrainOptions(epochs=1, **{**TINY, "units": 48}))


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, poems_file):
    model_dir = str(tmp_path / "m")
    train.fit(poems_file, model_dir, train.TrainOptions(epochs=1, max_steps=2, **TINY))
    good = tf.train.latest_checkpoint(modeldir.checkpoint_dir(model_dir))
    absurd = train.TrainOptions(epochs=50, optimizer="sgd", learning_rate=1e38, clip_norm=0, checkpoint_every=1, **TINY)
    with pytest.raises(train.TrainingDiverged, match=r"became (nan|inf) at step \d+"):
        train.fit(poems_file, model_dir, absurd)
    latest = tf.train.latest_checkpoint(modeldir.checkpoint_dir(model_dir))
    loaded = modeldir.load(model_dir)
    assert all(np.all(np.isfinite(v.numpy())) for v in loaded.model.weights), (good, latest)
