import math

import numpy as np
import tensorflow as tf

from poetry_rnn.model import loss


def test_masked_poem_loss_is_per_poem_mean_then_batch_mean():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 5)).astype(np.float32)
    targets = np.array([[1, 2, 3, 0], [4, 4, 0, 0]], np.int32)
    lengths = np.array([3, 2], np.int32)
    per_poem, nll, tokens = loss.masked_poem_loss(targets, logits, lengths)

    def nll_at(b, t):
        row = logits[b, t]
        return -(row[targets[b, t]] - math.log(np.exp(row).sum()))

    poem0 = sum(nll_at(0, t) for t in range(3)) / 3
    poem1 = sum(nll_at(1, t) for t in range(2)) / 2
    np.testing.assert_allclose(per_poem.numpy(), [poem0, poem1], rtol=1e-5)
    np.testing.assert_allclose(float(nll), poem0 * 3 + poem1 * 2, rtol=1e-5)
    assert float(tokens) == 5


def test_padding_positions_get_no_gradient():
    logits = tf.Variable(tf.random.normal((2, 4, 5)))
    targets = tf.constant([[1, 2, 3, 0], [4, 4, 0, 0]])
    with tf.GradientTape() as tape:
        per_poem, _, _ = loss.masked_poem_loss(targets, logits, tf.constant([3, 2]))
        value = tf.reduce_mean(per_poem)
    grad = tape.gradient(value, logits).numpy()
    assert np.all(grad[0, 3] == 0) and np.all(grad[1, 2:] == 0)
    assert np.any(grad[0, 2] != 0) and np.any(grad[1, 1] != 0)


def test_stream_loss_is_token_mean_and_perplexity_uses_totals():
    logits = tf.random.normal((3, 6, 7))
    targets = tf.random.uniform((3, 6), 0, 7, tf.int32)
    per_window, nll, tokens = loss.stream_loss(targets, logits)
    expected = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    np.testing.assert_allclose(float(tf.reduce_mean(per_window)), float(tf.reduce_mean(expected)), rtol=1e-5)
    assert float(tokens) == 18
    assert math.isclose(loss.perplexity(float(nll), float(tokens)), math.exp(float(tf.reduce_mean(expected))), rel_tol=1e-5)


def test_positions_not_scored_count_for_nothing():
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(2, 6, 9)), tf.float32)
    targets = tf.constant([[4, 4, 5, 6, 3, 0], [5, 6, 7, 3, 0, 0]])
    lengths = tf.constant([5, 4])
    scored = tf.constant([[False, False, True, True, True, True], [True] * 6])
    per_poem, nll, tokens = loss.masked_poem_loss(targets, logits, lengths, scored)
    whole = loss.token_nll(targets, logits).numpy()
    assert float(tokens) == 3 + 4
    np.testing.assert_allclose(per_poem.numpy(), [whole[0, 2:5].mean(), whole[1, :4].mean()], rtol=1e-6)
    np.testing.assert_allclose(float(nll), whole[0, 2:5].sum() + whole[1, :4].sum(), rtol=1e-6)
