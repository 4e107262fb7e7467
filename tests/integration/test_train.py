import dataclasses
import glob
import io
import json
import os
import re
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from poetry_rnn.model import fast_lstm, store
from poetry_rnn.infra import progress as progress_lib
from poetry_rnn.training import steps, trainer
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model.network import ModelConfig, PoetryModel
from conftest import run_module, synthetic_poems, write_poems

TINY = dict(units=24, embed_dim=8, layers=1, batch_size=16, samples=0, quiet=True)


def test_a_bf16_run_leaves_float32_behind_it(poems_file, tmp_path):
    """Keras's dtype policy is process-wide: training must not hand bf16 to the next model made."""
    model_dir = str(tmp_path / "m")
    trainer.fit(poems_file, model_dir, trainer.TrainOptions.of(epochs=1, max_steps=2, mixed_precision="bf16", **TINY))
    assert keras.mixed_precision.global_policy().name == "float32"
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as handle:
        assert json.load(handle)["train"]["mixed_precision"] == "bf16"
    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # as a caller's own code might leave it
    try:
        loaded = store.load(model_dir)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert {layer.compute_dtype for layer in [loaded.model, *loaded.model.layers]} == {"float32"}


def test_loss_falls_and_the_model_dir_is_complete(tmp_path):
    # Twelve poems repeated: learnable, unlike random characters.
    data = write_poems(tmp_path / "poems.txt", synthetic_poems(12) * 20)
    history = trainer.fit(data, str(tmp_path / "m"), trainer.TrainOptions.of(epochs=12, learning_rate=2e-2, valid_fraction=0, **TINY))
    assert history.train_loss[-1] < 0.7 * history.train_loss[0]
    assert all(0 <= p < 0.15 for p in history.padding_fraction)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model"]["units"] == 24 and config["train"]["epochs"] == 12
    assert os.listdir(tmp_path / "m" / "logs" / "train")


def test_rerunning_resumes_from_the_saved_step(tmp_path, poems_file):
    model_dir = str(tmp_path / "m")
    first = trainer.fit(poems_file, model_dir, trainer.TrainOptions.of(epochs=1, **TINY))
    second = trainer.fit(poems_file, model_dir, trainer.TrainOptions.of(epochs=2, **TINY))
    assert second.step == 2 * first.step  # one more epoch, not a fresh start
    assert len(second.train_loss) == 1


def test_resume_inside_an_epoch_continues_its_batches(tmp_path, poems_file):
    model_dir = str(tmp_path / "m")
    stopped = trainer.fit(poems_file, model_dir, trainer.TrainOptions.of(epochs=1, max_steps=5, **TINY))
    assert stopped.step == 5
    whole = trainer.fit(poems_file, model_dir, trainer.TrainOptions.of(epochs=1, **TINY))
    reference = trainer.fit(poems_file, str(tmp_path / "ref"), trainer.TrainOptions.of(epochs=1, **TINY))
    assert whole.step == reference.step


def test_train_step_traces_once_for_all_batch_shapes():
    model = PoetryModel(ModelConfig(vocab_size=20, units=8, embed_dim=4, layers=1))
    optimizer = tf.keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    step, _ = steps.make_steps(model, optimizer, tf.distribute.get_strategy())
    for batch, time in [(4, 7), (3, 12), (5, 30), (2, 3)]:
        x = tf.random.uniform((batch, time), 1, 20, tf.int32)
        step((x, x, tf.fill([batch], time)))
    assert step.experimental_get_tracing_count() == 1


def test_a_different_vocabulary_is_refused(tmp_path, poems_file):
    model_dir = str(tmp_path / "m")
    trainer.fit(poems_file, model_dir, trainer.TrainOptions.of(epochs=1, max_steps=1, **TINY))
    other = write_poems(tmp_path / "other.txt", [("t", "天地玄黄宇宙洪荒，日月盈昃辰宿列张。")] * 5)
    with pytest.raises(PoetryError, match="different vocabulary.*fingerprint.*use a new --model_dir"):
        trainer.fit(other, model_dir, trainer.TrainOptions.of(epochs=1, min_count=1, **TINY))


def test_a_different_model_shape_is_refused(tmp_path, poems_file):
    model_dir = str(tmp_path / "m")
    trainer.fit(poems_file, model_dir, trainer.TrainOptions.of(epochs=1, max_steps=1, **TINY))
    with pytest.raises(PoetryError, match="units=48 \\(saved 24\\)"):
        trainer.fit(poems_file, model_dir, trainer.TrainOptions.of(epochs=1, **{**TINY, "units": 48}))


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, poems_file):
    model_dir = str(tmp_path / "m")
    trainer.fit(poems_file, model_dir, trainer.TrainOptions.of(epochs=1, max_steps=2, **TINY))
    good = tf.train.latest_checkpoint(store.checkpoint_dir(model_dir))
    absurd = trainer.TrainOptions.of(epochs=50, optimizer="sgd", learning_rate=1e38, clip_norm=0, checkpoint_every=1, **TINY)
    with pytest.raises(trainer.TrainingDiverged, match=r"became (nan|inf) at step \d+"):
        trainer.fit(poems_file, model_dir, absurd)
    latest = tf.train.latest_checkpoint(store.checkpoint_dir(model_dir))
    loaded = store.load(model_dir)
    assert all(np.all(np.isfinite(v.numpy())) for v in loaded.model.weights), (good, latest)


def test_cosine_schedule_anneals_from_the_learning_rate_to_its_final_share():
    options = trainer.TrainOptions.of(learning_rate=0.01, lr_schedule="cosine", final_lr_fraction=0.1)
    rates = [trainer.learning_rate_at(options, p) for p in np.linspace(0, 1, 11)]
    assert rates[0] == pytest.approx(0.01) and rates[-1] == pytest.approx(0.001)
    assert rates[5] == pytest.approx(0.0055)  # halfway down at half the run
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert trainer.learning_rate_at(trainer.TrainOptions.of(learning_rate=0.01), 0.7) == 0.01


def test_warmup_rises_linearly_then_the_cosine_runs_over_the_rest():
    options = trainer.TrainOptions.of(learning_rate=0.02, lr_schedule="cosine", final_lr_fraction=0.0, warmup=0.2)
    assert trainer.learning_rate_at(options, 0.0) == 0.0
    assert trainer.learning_rate_at(options, 0.1) == pytest.approx(0.01)
    assert trainer.learning_rate_at(options, 0.2) == pytest.approx(0.02)
    assert trainer.learning_rate_at(options, 0.6) == pytest.approx(0.01)  # halfway through the cosine's 0.8
    assert trainer.learning_rate_at(options, 1.0) == pytest.approx(0.0, abs=1e-12)
    constant = trainer.TrainOptions.of(learning_rate=0.02, warmup=0.5)
    assert [trainer.learning_rate_at(constant, p) for p in (0.25, 0.5, 0.9)] == pytest.approx([0.01, 0.02, 0.02])


def logged_scalars(folder, tag):
    """[(step, value)] of a scalar TensorBoard summary written under ``folder``."""
    values = []
    for name in sorted(os.listdir(folder)):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
            values += [(event.step, float(tf.make_ndarray(v.tensor))) for v in event.summary.value if v.tag == tag]
    return sorted(values)


def test_training_follows_the_cosine_schedule(tmp_path, poems_file):
    model_dir = tmp_path / "m"
    options = trainer.TrainOptions.of(epochs=2, learning_rate=0.01, lr_schedule="cosine", final_lr_fraction=0.0, **TINY)
    history = trainer.fit(poems_file, str(model_dir), options)
    rates = logged_scalars(model_dir / "logs" / "train", "learning_rate")
    assert len(rates) == history.step
    assert rates[0][1] == pytest.approx(0.01)
    # Step s (1-based) ran at progress (s - 1) / steps: halfway, half the rate.
    assert rates[history.step // 2][1] == pytest.approx(0.005, rel=1e-5)
    assert rates[-1][1] == pytest.approx(trainer.learning_rate_at(options, (history.step - 1) / history.step), rel=1e-5)


def test_init_from_starts_a_new_run_from_another_models_weights_and_vocabulary(tmp_path, poems_file):
    source = str(tmp_path / "source")
    trainer.fit(poems_file, source, trainer.TrainOptions.of(epochs=1, **TINY))
    other_data = write_poems(tmp_path / "other.txt", synthetic_poems(50, seed=7))
    # SGD at a vanishing rate: one step leaves the weights where they started.
    options = trainer.TrainOptions.of(epochs=1, max_steps=1, optimizer="sgd", learning_rate=1e-12, init_from=source, **TINY)
    trainer.fit(other_data, str(tmp_path / "tuned"), options)
    before, after = store.load(source), store.load(str(tmp_path / "tuned"))
    assert after.vocab == before.vocab
    for a, b in zip(before.model.weights, after.model.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    with pytest.raises(PoetryError, match=f"{source} holds a different model: units=48 \\(saved 24\\)"):
        trainer.fit(other_data, str(tmp_path / "wider"), trainer.TrainOptions.of(epochs=1, init_from=source, **{**TINY, "units": 48}))
    # A run started from another model may be primed differently (conditioned) and resumed as such;
    # its vocabulary stays the source's, though the data's own (titles included) differs.
    keyed = str(tmp_path / "keyed")
    options = trainer.TrainOptions.of(epochs=2, max_steps=2, init_from=source, condition="keywords", dropout=0.2, **TINY)
    trainer.fit(other_data, keyed, options)
    resumed = trainer.fit(other_data, keyed, dataclasses.replace(options, max_steps=4))
    assert resumed.step == 4 and store.load(keyed).vocab == before.vocab
    assert store.load(keyed).config.condition == "keywords"
    # A prompt bag adds weights, which start at zero; --train_only_new trains them alone, so poems
    # without a prompt stay exactly the source's. The bag's weights cannot be dropped on the way back.
    bagged = str(tmp_path / "bagged")
    trainer.fit(other_data, bagged, trainer.TrainOptions.of(epochs=1, max_steps=3, learning_rate=0.01, init_from=source,
                                                            condition="keywords", prompt_bag=True, train_only_new=True,
                                                            **TINY))
    tuned = store.load(bagged).model
    source_weights = {store.weight_name(v): v.numpy() for v in before.model.weights}
    for variable in tuned.weights:
        name = store.weight_name(variable)
        if name.startswith("bag_"):
            assert np.abs(variable.numpy()).max() > 0, name
        else:
            np.testing.assert_array_equal(variable.numpy(), source_weights[name])
    unprompted = tf.constant([[2, 10, 11, 12, 3]])
    np.testing.assert_allclose(tuned(unprompted)[0].numpy(), before.model(unprompted)[0].numpy(), atol=1e-6)
    assert np.abs(tuned(tf.constant([[2, 10, 11, 12, 3, 7, 8]]))[0].numpy()[:, :5]
                  - before.model(unprompted)[0].numpy()).max() > 1e-4  # a bag after the end shifts every step
    with pytest.raises(PoetryError, match="--train_only_new needs --init_from and an option that adds weights"):
        trainer.TrainOptions.of(epochs=1, init_from=source, train_only_new=True, **TINY)
    with pytest.raises(PoetryError, match="has weights this model has no place for \\(bag_features/kernel, "
                                          "bag_logits/kernel\\); keep its --prompt_bag"):
        trainer.fit(other_data, str(tmp_path / "unbagged"),
                    trainer.TrainOptions.of(epochs=1, init_from=bagged, condition="keywords", **TINY))


def test_a_run_keeps_the_fingerprints_of_its_training_poems_and_those_of_the_model_it_started_from(tmp_path):
    from poetry_rnn.corpus import reading, split
    from poetry_rnn.model import training_poems

    first = write_poems(tmp_path / "first.txt", synthetic_poems(100, seed=1))
    second = write_poems(tmp_path / "second.txt", synthetic_poems(100, seed=2))
    trainer.fit(first, str(tmp_path / "a"), trainer.TrainOptions.of(epochs=1, max_steps=1, **TINY))
    trainer.fit(second, str(tmp_path / "b"), trainer.TrainOptions.of(epochs=1, max_steps=1, init_from=str(tmp_path / "a"),
                                                                     **TINY))
    halves = {}
    for name, data in (("first", first), ("second", second)):
        halves[name] = split.split_train_valid(reading.read_poems(data)[0], trainer.TrainOptions.valid_fraction)
        assert halves[name][1], "the split holds some poems out"
    a, b = training_poems.load(str(tmp_path / "a")), training_poems.load(str(tmp_path / "b"))
    assert len(a) == len(halves["first"][0]) and len(b) == len(a) + len(halves["second"][0])
    for name, known in (("first", a), ("second", b)):
        train, held_out = halves[name]
        assert all(known.holds(p.content) for p in train) and not any(known.holds(p.content) for p in held_out)
    assert all(b.holds(p.content) for p in halves["first"][0])  # the weights it started from learned them


def test_a_resumed_run_takes_the_learning_rate_from_the_flags_not_the_checkpoint(tmp_path, poems_file):
    model_dir = tmp_path / "m"
    first = trainer.fit(poems_file, str(model_dir), trainer.TrainOptions.of(epochs=1, learning_rate=0.01, **TINY))
    trainer.fit(poems_file, str(model_dir), trainer.TrainOptions.of(epochs=2, learning_rate=0.002, **TINY))
    rates = dict(logged_scalars(model_dir / "logs" / "train", "learning_rate"))
    assert rates[first.step] == pytest.approx(0.01) and rates[first.step + 1] == pytest.approx(0.002)


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stdout, live", [(Terminal(), True), (io.StringIO(), False)], ids=["terminal", "file"])
def test_progress_is_a_live_bar_on_a_terminal_and_plain_lines_elsewhere(monkeypatch, stdout, live):
    monkeypatch.setattr(sys, "stdout", stdout)
    progress = progress_lib.EpochProgress(batches=6, epoch=0, epochs=2, log_every=3)
    for batch in range(1, 7):
        progress.update(step=10 + batch, batch=batch, loss=4.5, tokens_per_second=1234.0)
    text = stdout.getvalue()
    if live:
        assert "━" in text and "\r" in text
    else:
        assert text.splitlines() == ["step 12: epoch 1/2, batch 2/6, loss 4.5000, 1,234 tokens/s",
                                     "step 15: epoch 1/2, batch 5/6, loss 4.5000, 1,234 tokens/s"]


def test_train_into_a_log_file_writes_plain_lines(tmp_path, poems_file):
    result = run_module("train", "--data", poems_file, "--model_dir", str(tmp_path / "m"), "--units", "8", "--embed_dim", "4",
                        "--layers", "1", "--batch_size", "16", "--epochs", "2", "--samples", "0", "--log_every", "4")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr and "━" not in result.stdout
    lines = result.stdout.splitlines()
    assert all(re.fullmatch(r"step \d+: epoch [12]/2, batch \d+/13, loss [\d.]+, [\d,]+ tokens/s", line) for line in lines), lines
    assert [int(line.split()[1][:-1]) for line in lines] == list(range(4, 27, 4))  # 2 epochs of 13 batches
    epochs = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2
    kernel = fast_lstm.default_kernel()  # none was given: the device decides, and the run says which
    assert f"{kernel} LSTM kernel" in result.stderr
    assert json.load(open(tmp_path / "m" / "config.json"))["train"]["lstm_kernel"] == kernel


def test_bf16_is_the_default_only_where_the_cpu_computes_it_natively(tmp_path, monkeypatch):
    from poetry_rnn.infra import hardware

    amx, avx2, odd = tmp_path / "amx", tmp_path / "avx2", tmp_path / "odd"
    amx.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16\n")
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n")
    odd.write_text("no flags line at all\n")
    assert hardware.cpu_has_native_bf16(str(amx))
    assert not hardware.cpu_has_native_bf16(str(avx2)) and not hardware.cpu_has_native_bf16(str(odd))
    assert not hardware.cpu_has_native_bf16(str(tmp_path / "missing"))
    for native, expected in ((True, "bf16"), (False, "off")):
        monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda native=native: native)
        assert trainer.TrainOptions().resolved().mixed_precision == expected
        assert trainer.TrainOptions(mixed_precision="fp16").resolved().mixed_precision == "fp16"  # asked for: kept


def test_tensorboard_shows_each_runs_recipe_beside_its_curves(tiny_model_dir):
    """The HParams dashboard reads the recipe from the run's own logs."""
    events = glob.glob(os.path.join(tiny_model_dir, store.LOGS, "train", "events.out.tfevents*"))
    recipes = [value for path in events for event in tf.compat.v1.train.summary_iterator(path)
               for value in event.summary.value if value.metadata.plugin_data.plugin_name == "hparams"]
    assert recipes, "no hparams summary in the run's train logs"
    content = b"".join(value.metadata.plugin_data.content for value in recipes)
    config = json.load(open(os.path.join(tiny_model_dir, "config.json"), encoding="utf-8"))
    assert b"model.cell" in content and config["model"]["cell"].encode() in content and b"learning_rate" in content
