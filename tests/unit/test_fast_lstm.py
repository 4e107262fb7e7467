"""fast_lstm computes what the Keras LSTM layer computes: outputs, final states and every gradient."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from poetry_rnn.model import fast_lstm, loss as loss_lib
from poetry_rnn.model.network import ModelConfig, PoetryModel


def _model(**fields):
    keras.utils.set_random_seed(1)
    model = PoetryModel(ModelConfig(vocab_size=40, units=12, embed_dim=6, layers=2, **fields))
    # Non-zero initial states and biases, so their gradients are exercised too.
    for v in model.weights:
        v.assign(v + tf.random.normal(v.shape, stddev=0.1, seed=2))
    return model


def _run(model, fast, ids, states, targets, lengths):
    model.lstm_kernel = "fused" if fast else "keras"
    with tf.GradientTape() as tape:
        tape.watch(states)
        logits, final = model(ids, states=states, training=True)
        per_poem, _, _ = loss_lib.masked_poem_loss(targets, logits, lengths)
        # The final states enter the loss too, as they would through a carried stream state.
        loss = tf.reduce_mean(per_poem) + sum(tf.reduce_sum(tf.square(s)) for layer in final for s in layer) * 0.01
    grads = tape.gradient(loss, model.trainable_variables + tf.nest.flatten(states))
    return logits, final, [tf.convert_to_tensor(g) for g in grads]


@pytest.mark.parametrize("batch, time", [(5, 9), (1, 1)])
def test_outputs_states_and_gradients_match_the_keras_layer(batch, time):
    model = _model()
    assert all(fast_lstm.usable(rnn.cell) for rnn in model.rnns)
    rng = np.random.default_rng(0)
    ids = tf.constant(rng.integers(5, 40, (batch, time)), tf.int32)
    lengths = tf.constant(rng.integers(1, time + 1, batch), tf.int32)
    states = [tf.constant(rng.normal(0, 0.5, (batch, 12)), tf.float32) for _ in range(4)]
    nested = ((states[0], states[1]), (states[2], states[3]))
    keras_out = _run(model, False, ids, nested, ids, lengths)
    fast_out = _run(model, True, ids, nested, ids, lengths)
    np.testing.assert_allclose(fast_out[0], keras_out[0], atol=1e-5)
    for a, b in zip(tf.nest.flatten(fast_out[1]), tf.nest.flatten(keras_out[1])):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for a, b in zip(fast_out[2], keras_out[2]):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)


def test_an_empty_batch_runs():
    # A replica's share of a small global batch may be empty (MirroredStrategy).
    model = _model()
    model.lstm_kernel = "fused"
    logits, final = model(tf.zeros((0, 4), tf.int32), training=True)
    assert logits.shape == (0, 4, 40) and final[1][1].shape == (0, 12)


def test_traced_training_step_matches_under_bf16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = _model()
        ids = tf.constant(np.random.default_rng(3).integers(5, 40, (4, 7)), tf.int32)
        lengths = tf.fill([4], 7)

        @tf.function
        def loss_of(fast):
            model.lstm_kernel = "fused" if fast else "keras"
            logits, _ = model(ids, training=True)
            return tf.reduce_mean(loss_lib.masked_poem_loss(ids, logits, lengths)[0])

        assert abs(float(loss_of(True)) - float(loss_of(False))) < 2e-2  # bf16 rounding, 3 significant digits
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_the_kernel_is_chosen_by_the_caller_and_defaults_by_device():
    assert PoetryModel(ModelConfig(vocab_size=20, units=4, embed_dim=3, layers=1)).lstm_kernel == "keras"
    on_accelerator = any(tf.config.list_logical_devices(kind) for kind in ("GPU", "TPU"))
    assert fast_lstm.default_kernel() == ("keras" if on_accelerator else "fused")


def test_other_cells_and_special_settings_keep_the_keras_layer():
    gru = PoetryModel(ModelConfig(vocab_size=20, units=4, embed_dim=3, layers=1, cell="gru"), lstm_kernel="fused")
    assert not fast_lstm.usable(gru.rnns[0].cell)
    cell = keras.layers.LSTMCell(4, recurrent_dropout=0.1)
    cell.build((None, 3))
    assert not fast_lstm.usable(cell)


def test_weight_drop_zeroes_a_share_of_recurrent_weights_while_training_only():
    model = _model(weight_drop=0.4)
    model.lstm_kernel = "keras"  # weight drop takes the fused kernel whatever the caller chose
    ids = tf.constant(np.random.default_rng(4).integers(5, 40, (3, 6)), tf.int32)
    recurrent = model.rnns[0].cell.recurrent_kernel
    with tf.GradientTape() as tape:
        logits, _ = model(ids, training=True)
        loss = tf.reduce_mean(tf.square(logits))
    grad = tape.gradient(loss, recurrent).numpy()
    dropped = np.mean(grad == 0)
    assert 0.3 < dropped < 0.5, dropped  # a dropped weight gets no gradient; a kept one almost surely does
    # Decoding and evaluation see every weight: the same outputs as a model without weight drop.
    plain = _model()
    np.testing.assert_allclose(model(ids)[0], plain(ids)[0], atol=1e-6)
    assert not np.allclose(model(ids, training=True)[0], plain(ids)[0], atol=1e-3)


def test_variational_dropout_keeps_one_mask_for_every_step():
    ones = tf.ones((4, 9, 12))
    for variational, same_over_time in ((True, True), (False, False)):
        model = _model(dropout=0.5, variational_dropout=variational)
        kept = model.dropouts[0](ones, training=True).numpy() != 0
        assert (kept == kept[:, :1, :]).all() == same_over_time
        assert 0.3 < kept.mean() < 0.7


def test_weight_drop_needs_an_lstm():
    from poetry_rnn.infra.errors import PoetryError

    with pytest.raises(PoetryError, match="--weight_drop needs --cell lstm"):
        ModelConfig(vocab_size=20, units=4, cell="gru", weight_drop=0.2)
