"""--adaptive_softmax: the exact distribution over every id, from a head and narrow frequency bands."""

import re

import numpy as np
import pytest
import tensorflow as tf

from poetry_rnn import poet
from poetry_rnn.evaluation import report as report_lib
from poetry_rnn.model import network as model_lib, store
from poetry_rnn.serving import savedmodel
from poetry_rnn.training import trainer
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model.network import ModelConfig, PoetryModel
from conftest import run_module, synthetic_poems, write_poems


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_every_id_gets_its_exact_probability():
    config = ModelConfig(vocab_size=40, units=16, embed_dim=6, layers=1, adaptive_softmax="10,25")
    head = PoetryModel(config).head
    weights = {v.path.split("/", 2)[2]: v for v in head.weights}
    for variable in weights.values():  # away from the zero biases it starts with
        variable.assign(tf.random.normal(variable.shape, seed=1))
    x = np.random.default_rng(0).normal(size=(3, 16)).astype(np.float32)
    value = {name: v.numpy() for name, v in weights.items()}
    # By hand: P(id) = P_head(id) in the shortlist, P_head(band) * P_band(id) past it.
    p_head = softmax(x @ value["head/kernel"] + value["head/bias"])
    bands = [softmax(x @ value[f"tail_{i}_projection/kernel"] @ value[f"tail_{i}/kernel"] + value[f"tail_{i}/bias"])
             for i in range(2)]
    expected = np.concatenate([p_head[:, :10], p_head[:, 10:11] * bands[0], p_head[:, 11:12] * bands[1]], axis=1)
    assert [b.shape[1] for b in bands] == [15, 15] and value["tail_1_projection/kernel"].shape == (16, 1)
    np.testing.assert_allclose(np.exp(head(tf.constant(x)).numpy()), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("cell", sorted(model_lib.CELLS))
def test_its_weights_are_the_ones_promised_and_fewer_than_a_full_layer(cell):
    full = ModelConfig(vocab_size=300, cell=cell, units=64, embed_dim=8, layers=1)
    adaptive = ModelConfig(**{**full.to_dict(), "adaptive_softmax": "50,150"})
    built = {v.path.split("/", 1)[1]: tuple(v.shape) for v in PoetryModel(adaptive).weights}
    assert model_lib.variable_shapes(adaptive) == built
    # 64x52 head, 64x16 + 16x100 and 64x4 + 4x150 bands, against 64x300: 35 % of the products.
    output = 2 * 64 * 300
    adaptive_output = model_lib.matmul_flops(adaptive) - (model_lib.matmul_flops(full) - output)
    assert adaptive_output == 2 * (64 * 52 + 64 * 16 + 16 * 100 + 64 * 4 + 4 * 150) and adaptive_output < 0.36 * output


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(adaptive_softmax="1024;3072"), "--adaptive_softmax must be increasing whole numbers above 4"),
        (dict(adaptive_softmax="300,200"), "--adaptive_softmax must be increasing whole numbers above 4"),
        (dict(adaptive_softmax="4"), "--adaptive_softmax must be increasing whole numbers above 4"),
        (dict(adaptive_softmax="20", tie_embeddings=True), "--adaptive_softmax and --tie_embeddings are two output"),
        (dict(adaptive_softmax="10,20,30", units=32), "3 bands, .* need --units >= 64, got 32"),
        (dict(adaptive_softmax="10,40", vocab_size=40), "cutoff 40 is not below the vocabulary's 40 tokens"),
    ],
)
def test_bad_cutoffs_are_refused_by_name(settings, message):
    with pytest.raises(PoetryError, match=message):
        ModelConfig(**{"vocab_size": 300, "units": 64, **settings})


def test_cutoffs_past_the_data_s_vocabulary_stop_training_before_it_starts(tmp_path):
    data = write_poems(tmp_path / "poems.txt", synthetic_poems(20))
    result = run_module("train", "--data", data, "--model_dir", str(tmp_path / "m"), "--units", "16", "--embed_dim",
                        "4", "--layers", "1", "--adaptive_softmax", "10,5000")
    assert result.returncode != 0
    assert re.fullmatch(r"error: --adaptive_softmax 10,5000: cutoff 5000 is not below the vocabulary's \d+ tokens",
                        result.stderr.strip().splitlines()[-1])
    assert not (tmp_path / "m" / "config.json").exists()


def test_an_adaptive_model_with_a_prompt_bag_trains_in_bf16_scores_and_writes(tmp_path):
    data = write_poems(tmp_path / "poems.txt", synthetic_poems(12) * 20)
    model_dir = str(tmp_path / "m")
    options = trainer.TrainOptions.of(units=24, embed_dim=8, layers=1, batch_size=16, samples=0, quiet=True, epochs=12,
                                      learning_rate=2e-2, valid_fraction=0, adaptive_softmax="10,30",
                                      condition="keywords", prompt_bag=True, mixed_precision="bf16")
    history = trainer.fit(data, model_dir, options)
    assert history.train_loss[-1] < 0.7 * history.train_loss[0]
    loaded = store.load(model_dir)  # in float32, whatever it trained in
    assert loaded.config.adaptive_softmax == "10,30"
    logits, _ = loaded.model(tf.constant([[2, 9, 12, 30, 31, 50]]))
    np.testing.assert_allclose(tf.reduce_logsumexp(logits, axis=-1).numpy(), 0.0, atol=1e-5)  # normalised as it is
    poems = [p for p in report_lib.reading.read_poems(data)[0]]
    assert report_lib.perplexity_report(loaded, poems)["perplexity"] < 10  # it learnt its twelve poems (uniform: 63)
    [written] = poet.load(model_dir).write(begin="春", form="wujue", keywords="月", seed=1)
    assert written.text.startswith("春") and [len(line) for line in written.lines] == [6, 6, 6, 6]  # 5 + punctuation
    # Shipped in float16 (export --format compact), it still gives every id a normalised probability.
    compact = tmp_path / "compact"
    compact.mkdir()
    savedmodel.export_compact(model_dir, str(compact))
    shipped, _ = store.load(str(compact)).model(tf.constant([[2, 9, 12, 30, 31, 50]]))
    np.testing.assert_allclose(tf.reduce_logsumexp(shipped, axis=-1).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(shipped.numpy(), logits.numpy(), atol=0.05)
    # And as a SavedModel, which runs without poetry_rnn.
    savedmodel.export(model_dir, str(tmp_path / "saved" / "1"))
    served = tf.saved_model.load(str(tmp_path / "saved" / "1"))
    out = served.signatures["generate"](begin=tf.constant(["春"]), form=tf.constant("wujue"),
                                        temperature=tf.constant(0.0), seed=tf.constant(1, tf.int64))
    poem = out["poems"].numpy()[0].decode()
    assert poem.startswith("春") and len(poem) == 24
