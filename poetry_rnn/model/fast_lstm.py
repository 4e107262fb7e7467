"""A faster whole-sequence LSTM for CPUs, on the weights of a Keras ``LSTMCell``.

Keras' LSTM layer runs the cell once per time step, input projection
included, and on a CPU its gradient accumulates the recurrent kernel's
gradient step by step. Here only what must be sequential is: the input
projections of all steps are one large matmul before the loop, and the
backward pass (written out, ``tf.custom_gradient``) collects the per-step
gate gradients and multiplies them into the kernel gradient once after its
loop. Same variables, same formulas (Keras defaults: sigmoid gates, tanh
cell, bias, gate order i f c o), so checkpoints and ``PoetryModel.step`` are
unchanged; ``tests/unit/test_fast_lstm.py`` checks outputs and gradients against
the Keras layer. On GPUs the Keras layer stays (it runs cuDNN there).

``train --lstm_kernel keras|fused`` chooses; ``default_kernel`` is the
choice where none is given.
"""

import keras
import tensorflow as tf

from poetry_rnn.infra import hardware

KERNELS = ("keras", "fused")


def default_kernel():
    """``fused`` on CPU-only machines, where it trained ~1.2x faster; ``keras`` (cuDNN) with a GPU or TPU."""
    return "keras" if hardware.has_accelerator() else "fused"


def usable(cell):
    """Whether ``cell`` computes exactly what ``run`` does (Keras defaults, no dropout)."""
    return (
        isinstance(cell, keras.layers.LSTMCell)
        and cell.built
        and cell.use_bias
        and cell.activation is keras.activations.tanh
        and cell.recurrent_activation is keras.activations.sigmoid
        and not cell.dropout
        and not cell.recurrent_dropout
    )


def run(cell, inputs, state, weight_drop=0.0):
    """The LSTM over ``inputs`` (batch, time, features) from ``state`` = (h, c).

    Returns (outputs (batch, time, units), h_T, c_T) like
    ``keras.layers.LSTM(return_sequences=True, return_state=True)``.
    ``weight_drop`` > 0 drops that share of the recurrent kernel's entries
    (one mask for the whole batch and every step, the rest scaled up), as
    AWD-LSTM's weight drop does; the gradient reaches the kept entries only.
    """
    dtype = inputs.dtype
    kernel, recurrent, bias = (tf.cast(v, dtype) for v in (cell.kernel, cell.recurrent_kernel, cell.bias))
    if weight_drop:
        recurrent = tf.nn.dropout(recurrent, rate=weight_drop)
    h0, c0 = (tf.cast(s, dtype) for s in state)
    projected = tf.einsum("btd,dg->tbg", inputs, kernel) + bias  # (time, batch, 4 units), one matmul
    outputs, c_last = _recurrence(projected, recurrent, h0, c0)
    return tf.transpose(outputs, [1, 0, 2]), outputs[-1], c_last


@tf.custom_gradient
def _recurrence(projected, recurrent, h0, c0):
    """h_t, c_t from z_t = projected_t + h_{t-1} @ recurrent; returns (h for every t, c_T)."""
    steps = tf.shape(projected)[0]
    dtype = projected.dtype

    def array():
        return tf.TensorArray(dtype, size=steps)

    def forward(t, h, c, hs, cs, gates):
        z = projected[t] + tf.matmul(h, recurrent)
        i, f, g, o = tf.split(z, 4, axis=1)
        i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
        c = f * c + i * g
        h = o * tf.tanh(c)
        return t + 1, h, c, hs.write(t, h), cs.write(t, c), gates.write(t, tf.concat([i, f, g, o], axis=1))

    _, _, c_last, hs, cs, gates = tf.while_loop(
        lambda t, *_: t < steps, forward, (tf.constant(0), h0, c0, array(), array(), array())
    )
    hs, cs, gates = hs.stack(), cs.stack(), gates.stack()

    def grad(d_hs, d_c_last):
        d_c_last = tf.zeros_like(c0) if d_c_last is None else tf.cast(d_c_last, dtype)
        d_hs = tf.cast(d_hs, dtype)
        c_before = tf.concat([c0[None], cs[:-1]], axis=0)

        def backward(k, dh_next, dc_next, dzs):
            t = steps - 1 - k
            i, f, g, o = tf.split(gates[t], 4, axis=1)
            tanh_c = tf.tanh(cs[t])
            dh = d_hs[t] + dh_next
            dc = dc_next + dh * o * (1 - tanh_c * tanh_c)
            dz = tf.concat(
                [dc * g * i * (1 - i), dc * c_before[t] * f * (1 - f), dc * i * (1 - g * g), dh * tanh_c * o * (1 - o)],
                axis=1,
            )
            return k + 1, tf.matmul(dz, recurrent, transpose_b=True), dc * f, dzs.write(t, dz)

        _, dh0, dc0, dzs = tf.while_loop(
            lambda k, *_: k < steps, backward, (tf.constant(0), tf.zeros_like(h0), d_c_last, array())
        )
        dzs = dzs.stack()  # (time, batch, 4 units): the gradient of ``projected``
        units = tf.shape(recurrent)[0]
        h_before = tf.concat([h0[None], hs[:-1]], axis=0)
        d_recurrent = tf.matmul(tf.reshape(h_before, [-1, units]), tf.reshape(dzs, [-1, 4 * units]), transpose_a=True)
        return dzs, d_recurrent, dh0, dc0

    return (hs, c_last), grad
