"""Sequence losses and perplexity, kept apart from the model and the loop.

Poems use the seed projects' masked loss: cross-entropy at every real
position, averaged per poem, then over the batch, so a short 五绝 weighs as
much as a long 古风. Perplexity is not derived from that loss (which weighs
poems, not characters) but from the totals: exp(total NLL / real tokens).
"""

import math

import tensorflow as tf


def token_nll(targets, logits):
    """Per-position negative log-likelihood, float32 whatever the logits' dtype."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=tf.cast(logits, tf.float32))


def masked_poem_loss(targets, logits, lengths, scored=None):
    """Per-poem mean NLL over the first ``lengths`` positions, shape (batch,).

    Padded positions, and those where ``scored`` (bool, like ``targets``) is
    False (a conditioned model's prompt), are multiplied by zero, so they
    get no gradient and no share of the perplexity.
    Returns (per_poem_loss, total_nll, total_tokens); callers average the first
    over the (global) batch and sum the others for perplexity.
    """
    nll = token_nll(targets, logits)
    mask = tf.sequence_mask(lengths, tf.shape(targets)[1], dtype=nll.dtype)
    if scored is not None:
        mask *= tf.cast(scored, nll.dtype)
    summed = tf.reduce_sum(nll * mask, axis=1)
    tokens = tf.reduce_sum(mask, axis=1)
    return summed / tf.maximum(tokens, 1.0), tf.reduce_sum(summed), tf.reduce_sum(tokens)


def stream_loss(targets, logits):
    """Token-mean cross-entropy for unpadded streams (the lyrics lessons).

    Returns (per_window_loss, total_nll, total_tokens) like masked_poem_loss,
    with every window the same length, so the batch mean is the token mean.
    """
    nll = token_nll(targets, logits)
    summed = tf.reduce_sum(nll, axis=1)
    steps = tf.cast(tf.shape(targets)[1], nll.dtype)
    return summed / steps, tf.reduce_sum(summed), steps * tf.cast(tf.shape(targets)[0], nll.dtype)


def perplexity(total_nll, total_tokens):
    return math.exp(total_nll / total_tokens) if total_tokens else float("nan")
