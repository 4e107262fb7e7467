"""Each poem's random numbers: a key per poem, and counter-based noise that is a function of the key alone.

A poem's random stream is keyed by (seed, index, copy), not by its place in
the batch, so a poem is the same alone, in a batch of others, or in a
server's coalesced batch. Only ops XLA can compile.
"""

import tensorflow as tf

# seed < 2**31, index < 2**20, copy < 2**12 fit one int64.
MAX_SEED, MAX_INDEX, MAX_COPIES = 2**31, 2**20, 2**12


def row_key(seed, index, copy):
    """The int64 key of poem ``index`` (copy ``copy`` of best_of) under ``seed``; numpy or TF."""
    return seed * (MAX_INDEX * MAX_COPIES) + index * MAX_COPIES + copy


def _splitmix64(x):
    """SplitMix64's finaliser on uint64 tensors: a fast, well-mixed hash (Steele et al. 2014)."""
    xor, shift = tf.bitwise.bitwise_xor, tf.bitwise.right_shift
    x = xor(x, shift(x, tf.constant(30, tf.uint64))) * tf.constant(0xBF58476D1CE4E5B9, tf.uint64)
    x = xor(x, shift(x, tf.constant(27, tf.uint64))) * tf.constant(0x94D049BB133111EB, tf.uint64)
    return xor(x, shift(x, tf.constant(31, tf.uint64)))


def uniform_noise(keys, step, vocab_size):
    """Uniform (0, 1) noise of shape (B, V), a function of (key[b], step, v) alone.

    Counter-based (a hash of the three numbers), so rows with different keys
    need no per-row random op and any batch gives each row the same numbers.
    """
    return _hashed_uniform(keys, tf.cast(step, tf.uint64), tf.cast(tf.range(vocab_size), tf.uint64))


# XLA fuses the hash's dozen integer ops on (B, V) into one loop: 14x faster than op by op on a
# CPU, and exact (integers, then one multiply), so the noise, and the poems, are the same.
@tf.function(jit_compile=True, autograph=False)
def _hashed_uniform(keys, step, columns):
    golden = tf.constant(0x9E3779B97F4A7C15, tf.uint64)
    row = _splitmix64(tf.bitcast(keys, tf.uint64) * golden + step)  # (B,)
    x = _splitmix64(row[:, None] + columns[None, :] * golden)  # (B, V)
    top24 = tf.bitwise.right_shift(x, tf.constant(40, tf.uint64))
    return (tf.cast(top24, tf.float32) + 0.5) * (1.0 / 2**24)
