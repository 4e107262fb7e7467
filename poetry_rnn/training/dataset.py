"""tf.data pipelines: bucketed poems, and the lyrics lessons' two stream samplers.

Poems are encoded as BOS + content + EOS (a conditioned model's prompt
between BOS and the content), shuffled, grouped with poems of similar length
(``bucket_by_sequence_length``) and padded only within a batch, so the model
spends its time on characters rather than padding. Each element is
``(inputs, targets, lengths)`` with ``targets`` the inputs shifted by one.

Bucket boundaries come from the corpus's own length quantiles: Tang poems
pile up at a few shapes (五绝 26 tokens, 七绝 34, 五律 50, 七律 66), so
fixed-width buckets would either waste padding or starve batches.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from poetry_rnn.model import vocab as vocab_lib
from poetry_rnn.verse.prosody import is_han


KEYWORDS_MOST = 3  # keywords drawn per poem and epoch: 0..3, uniformly
TITLE_SHOWN = 0.5  # keywords condition: share of poems shown with their title in an epoch


def draw_prompt(poem, rng):
    """(title, keywords) a keywords-conditioned model is shown with ``poem`` this epoch.

    The rule: the title half the time (when the poem has one), and 0 to
    KEYWORDS_MOST distinct Han characters of the poem itself, uniformly, in a
    random order. So a quarter of poems come with no keywords (and an eighth
    with no prompt at all: the model still writes freely), keywords come in
    any order a user might type them, and each is in the poem it primes.
    """
    title = poem.title if poem.title and rng.random() < TITLE_SHOWN else ""
    chars = sorted({c for c in poem.content if is_han(c)})
    count = min(int(rng.integers(KEYWORDS_MOST + 1)), len(chars))
    keywords = "".join(rng.choice(chars, size=count, replace=False)) if count else ""
    return title, keywords


def encode_poems(poems, vocab, condition="none", rng=None, prompt_bag=False):
    """One int32 array per poem: BOS, the prompt (``vocab.prompt_fields``), content, EOS.

    A title model's prompt is the poem's title. A keywords model's prompt is
    drawn by ``draw_prompt`` with ``rng`` (a training epoch's own), or left
    empty without one (evaluation: the poem as a model writes it unprompted).
    A ``prompt_bag`` model reads its prompt as a bag, never as a prefix: the
    poem is BOS content EOS, as an unconditioned model reads it, and the
    prompt's characters follow, closed by a second EOS (neither scored).
    """
    sequences = []
    for poem in poems:
        if condition == "keywords":
            title, keywords = draw_prompt(poem, rng) if rng is not None else ("", "")
        else:
            title, keywords = poem.title, ""
        fields = vocab_lib.prompt_fields(condition, title, keywords)
        content = vocab.encode(poem.content)
        if prompt_bag:
            bag = [i for text, _ in fields for i in vocab.encode(text)]
            tokens = [vocab_lib.BOS] + content + [vocab_lib.EOS] + (bag + [vocab_lib.EOS] if bag else [])
        else:
            prompt = [i for text, _ in fields for i in vocab.encode(text) + [vocab_lib.SEP]]
            tokens = [vocab_lib.BOS] + prompt + content + [vocab_lib.EOS]
        sequences.append(np.array(tokens, np.int32))
    return sequences


def prompt_positions(targets):
    """True where a target is part of the prompt: given, never scored.

    A prefix is everything at or before the row's last SEP; a bag
    (``encode_poems``' ``prompt_bag``) everything after its first EOS. The
    loss and perplexity count only the content and EOS, so a conditioned
    model's figures compare with an unconditioned one's and with the n-gram's.
    """
    is_sep = tf.cast(tf.equal(targets, vocab_lib.SEP), tf.int32)
    is_eos = tf.cast(tf.equal(targets, vocab_lib.EOS), tf.int32)
    after_end = (tf.cumsum(is_eos, axis=1, exclusive=True) > 0) & tf.not_equal(targets, vocab_lib.PAD)
    return (tf.cumsum(is_sep, axis=1, reverse=True) > 0) | after_end


def bucket_boundaries(lengths, buckets=24):
    """Boundaries at length quantiles, so each bucket holds a similar share of poems."""
    quantiles = np.quantile(np.asarray(lengths), np.linspace(0, 1, buckets + 1)[1:-1])
    return sorted({int(q) + 1 for q in quantiles})


@dataclasses.dataclass
class PoemBatches:
    """A bucketed dataset and what the training loop needs to know about it."""

    dataset: tf.data.Dataset
    batches_per_epoch: int
    poems: int


def poem_dataset(sequences, batch_size, shuffle_seed=None, skip_batches=0):
    """Bucketed, padded batches of ``(inputs, targets, lengths)``.

    ``shuffle_seed`` (None = keep file order, for evaluation) fixes the order
    of one epoch; training passes ``(seed, epoch)`` so that a resumed run can
    rebuild the same epoch and ``skip_batches`` it already trained on.
    """
    lengths = np.array([len(s) for s in sequences], np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    flat = tf.constant(np.concatenate(sequences))
    table = tf.constant(np.stack([starts, lengths], axis=1))
    boundaries = bucket_boundaries(lengths)

    bucket_of = np.searchsorted(boundaries, lengths, side="right")
    batches = int(sum(-(-np.sum(bucket_of == b) // batch_size) for b in range(len(boundaries) + 1)))

    ds = tf.data.Dataset.range(len(sequences))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(sequences), seed=shuffle_seed, reshuffle_each_iteration=False)
    ds = ds.map(lambda i: flat[table[i, 0] : table[i, 0] + table[i, 1]], num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.bucket_by_sequence_length(
        lambda x: tf.shape(x)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=vocab_lib.PAD,
    )
    ds = ds.map(lambda x: (x[:, :-1], x[:, 1:], tf.reduce_sum(tf.cast(x[:, 1:] != vocab_lib.PAD, tf.int32), axis=1)))
    ds = ds.skip(skip_batches).prefetch(tf.data.AUTOTUNE)
    return PoemBatches(ds, batches, len(sequences))


def shuffle_seed(seed, epoch):
    """One int64 seed per (seed, epoch), so each epoch has its own fixed order."""
    return int(seed) * 100_003 + int(epoch)


# --------------------------------------------------------------------------
# Streams: the lyrics lessons (d2l's data_iter_random / data_iter_consecutive)
#
# A stream is one int32 index array (the whole text, lines joined with a
# space). Both samplers yield numpy ``(inputs, targets)`` pairs of shape
# (batch_size, num_steps) with ``targets`` the inputs shifted by one. Both
# start each epoch at a random offset below ``num_steps`` (as d2l's second
# edition does), so window boundaries move from epoch to epoch; with
# ``random_offset=False`` they start at 0 every epoch, as the book's first
# edition (the one with the lyrics) does, so every epoch sees the same windows.

SAMPLINGS = ("random", "consecutive")


def split_stream(indices, valid_fraction):
    """(train, valid): the last ``valid_fraction`` of the stream is held out."""
    cut = len(indices) - int(round(len(indices) * valid_fraction))
    return indices[:cut], indices[cut:]


def random_windows(indices, batch_size, num_steps, rng, random_offset=True):
    """d2l's ``data_iter_random``: shuffled, non-overlapping windows.

    The windows start at ``offset + k * num_steps`` for every k that fits;
    each batch takes ``batch_size`` of them in a shuffled order, so adjacent
    windows of the text rarely meet in one batch and a batch says nothing
    about the next (the state starts from zeros for every batch). As in d2l,
    the windows left over after the last full batch are dropped.
    """
    offset = int(rng.integers(num_steps)) if random_offset else 0
    windows = (len(indices) - 1 - offset) // num_steps
    starts = offset + num_steps * rng.permutation(max(windows, 0))
    span = np.arange(num_steps)
    for b in range(max(windows, 0) // batch_size):
        chosen = starts[b * batch_size : (b + 1) * batch_size, None] + span
        yield indices[chosen], indices[chosen + 1]


def consecutive_strips(indices, batch_size, num_steps, rng=None, random_offset=True):
    """d2l's ``data_iter_consecutive``: ``batch_size`` parallel strips, read in order.

    The stream (from a random offset, or 0 without ``rng``) is cut into
    ``batch_size`` equal strips, one per batch row; batch i holds columns
    ``[i * num_steps, (i + 1) * num_steps)`` of every strip, so row r of
    batch i + 1 continues row r of batch i exactly and the final state of one
    batch is the right initial state of the next.
    """
    offset = int(rng.integers(num_steps)) if rng is not None and random_offset else 0
    per_strip = (len(indices) - 1 - offset) // batch_size
    if per_strip < 1:
        return
    inputs = indices[offset : offset + per_strip * batch_size].reshape(batch_size, per_strip)
    targets = indices[offset + 1 : offset + 1 + per_strip * batch_size].reshape(batch_size, per_strip)
    for start in range(0, (per_strip // num_steps) * num_steps, num_steps):
        yield inputs[:, start : start + num_steps], targets[:, start : start + num_steps]


def stream_epoch(indices, batch_size, num_steps, sampling, seed, epoch, random_offset=True):
    """The batches of one training epoch, as a list; the same list for the same (seed, epoch)."""
    rng = np.random.default_rng([int(seed), int(epoch)])
    sampler = {"random": random_windows, "consecutive": consecutive_strips}[sampling]
    return list(sampler(indices, batch_size, num_steps, rng, random_offset))


def eval_strips(indices, batch_size, num_steps):
    """Held-out text read in order: at most ``batch_size`` strips, every window used.

    Evaluation carries the state from window to window (as generation does),
    so a short held-out text is read as fewer, shorter strips rather than
    dropped.
    """
    strips = max(1, min(batch_size, (len(indices) - 1) // max(num_steps, 1)))
    steps = min(num_steps, max((len(indices) - 1) // strips, 0))
    if steps < 1:
        return []
    return list(consecutive_strips(indices, strips, steps))
