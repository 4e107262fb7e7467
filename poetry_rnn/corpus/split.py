"""Which poems of a corpus file are held out: a hash of the content, the same rule for poems and ci.

Training holds out the poems whose content hashes below ``valid_fraction``;
the tables prepare counts (title carry, line ends, the ci tune patterns)
are counted over the rest. The rule lives here, on the corpus floor, so the
corpus's own table builders and training read one definition of "held
out", and a ci's side is decided exactly as a poem's is.
"""

import zlib

TEST_SALT = b"test:"  # the second hash that cuts the held-out poems in two


def content_hash(poem, salt=b""):
    """0..9999 from the CRC-32 of the content (and ``salt``): the same on every machine and run."""
    return zlib.crc32(salt + poem.content.encode("utf-8")) % 10_000


def split_train_valid(poems, valid_fraction):
    """Deterministic split by a hash of the content, not by position or RNG.

    The same poem lands on the same side whatever the file order or seed, so
    evaluate, the n-gram baseline and later runs can rebuild the same split.
    """
    cut = int(round(valid_fraction * 10_000))
    train, valid = [], []
    for poem in poems:
        (valid if content_hash(poem) < cut else train).append(poem)
    return train, valid


def split_held_out(held_out):
    """(validation, test): the held-out poems cut in two by a second, salted hash.

    Training reports and chooses by the validation half only; the test half
    is for final reports, so a recipe tuned to one split is caught by the
    other. Both stay out of training (every model of this package held out
    the same poems), and a model trained before this split existed has never
    seen either half.
    """
    valid, test = [], []
    for poem in held_out:
        (test if content_hash(poem, TEST_SALT) % 2 else valid).append(poem)
    return valid, test
