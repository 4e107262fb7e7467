"""The poems a model trained on, as fingerprints kept in its folder, so that a draft copying one is ranked away.

A character model can learn a short poem by heart: 2 of 200 free poems the
shipped model wrote were training poems word for word (one-line sayings such
as 张公吃酒李公醉), and nothing else catches that, since the drafts' own
likelihood prefers what the model remembers best. ``train`` writes
``training_poems.npy`` beside the config: an 8-byte BLAKE2b fingerprint of
each training poem's content (415 kB for the shipped model's 51,849
poems, and no text, so a model folder does not ship its corpus). A run started
from another model (``--init_from``) keeps that model's fingerprints too:
its weights learned those poems. ``export --format compact`` copies the file.
"""

import hashlib
import os

import numpy as np

from poetry_rnn.corpus import reading, split
from poetry_rnn.infra import files
from poetry_rnn.infra.errors import PoetryError

FILE = "training_poems.npy"


def fingerprint(content):
    """A poem content's fingerprint: the first 8 bytes of its BLAKE2b hash, as an unsigned integer."""
    return int.from_bytes(hashlib.blake2b(content.encode("utf-8"), digest_size=8).digest(), "little")


class TrainingPoems:
    """A set of poem contents, held as sorted fingerprints (a false match is a 1 in 10^14 chance per draft)."""

    def __init__(self, fingerprints):
        self.fingerprints = np.unique(np.asarray(fingerprints, np.uint64))

    @classmethod
    def of(cls, contents):
        return cls([fingerprint(c) for c in contents])

    def __len__(self):
        return len(self.fingerprints)

    def holds(self, content):
        """True when ``content`` is word for word one of the poems."""
        key = np.uint64(fingerprint(content))
        at = np.searchsorted(self.fingerprints, key)
        return bool(at < len(self.fingerprints) and self.fingerprints[at] == key)

    def union(self, other):
        return TrainingPoems(np.concatenate([self.fingerprints, other.fingerprints]))

    def save(self, model_dir):
        with files.atomic_write(os.path.join(model_dir, FILE), "wb") as handle:
            np.save(handle, self.fingerprints, allow_pickle=False)


def load(model_dir):
    """The training poems recorded in ``model_dir``, or None for a model trained before they were kept."""
    path = os.path.join(model_dir, FILE)
    if not os.path.exists(path):
        return None
    try:
        fingerprints = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise PoetryError(f"cannot read {path}: {error}") from None
    if fingerprints.dtype != np.uint64 or fingerprints.ndim != 1:
        raise PoetryError(f"{path} is not a list of poem fingerprints")
    return TrainingPoems(fingerprints)


def record(model_dir, contents, init_from=""):
    """Write the fingerprints of ``contents``, with those of the model ``init_from`` started from, if it kept any."""
    poems = TrainingPoems.of(contents)
    inherited = load(init_from) if init_from else None
    (poems.union(inherited) if inherited is not None else poems).save(model_dir)


def record_split(model_dir, corpus, valid_fraction, init_from=""):
    """``record`` the training half of a poems.txt as ``train`` splits it: for a model trained before the file was kept."""
    poems, _ = reading.read_poems(corpus)
    train, _ = split.split_train_valid(poems, valid_fraction)
    record(model_dir, (p.content for p in train), init_from)
