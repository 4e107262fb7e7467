"""A learned critic of drafts: how much more a poem reads like a real Tang poem than like this model's drafts.

Residual energy-based reranking (Bakhtin et al. 2021): a small classifier
trained on real poems against the model's own drafts learns what the model
gets wrong over a whole poem (stock images, a season that changes between
lines, compounds no poet wrote), which a left-to-right likelihood cannot
see. ``best_of`` then ranks drafts by the model's likelihood plus
``critic_weight`` times the critic's log-odds (``ranking.Ranking``). It only
chooses among drafts the masks have already shaped, so form, rhyme and
tones hold exactly as before.

The critic is a recurrent classifier (a GRU over the poem's characters) on
purpose: the realism benchmark's judges are a character n-gram model and a
convolutional network, so a gain they see is not the critic grading its
own homework. A model directory may carry one in ``critic/``
(``python -m poetry_rnn.critic`` trains it, ``evaluation/critic.py``); it
reads the model's own vocabulary ids.
"""

import dataclasses
import json
import os

import keras
import numpy as np
import tensorflow as tf

from poetry_rnn.infra import files
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.infra.fields import option, validate
from poetry_rnn.model import vocab as vocab_lib

FOLDER = "critic"  # in a model directory, beside its config
CONFIG = "config.json"
WEIGHTS = "weights.npz"


@dataclasses.dataclass(frozen=True)
class CriticConfig:
    """The critic's network and how it is trained; saved in its config.json."""

    embed_dim: int = option(64, "Critic: character embedding width.", minimum=1)
    units: int = option(128, "Critic: GRU units.", minimum=1)
    epochs: int = option(4, "Critic: passes over the real and generated poems.", minimum=1)
    learning_rate: float = option(2e-3, "Critic: Adam's learning rate.", above=0)
    held_out: float = option(0.1, "Critic: share of each class kept out of training to measure its accuracy.",
                             above=0, below=1)
    seed: int = option(0, "Critic: seed for initialisation, the split and the order.", minimum=0)

    def __post_init__(self):
        validate(self)


def build(vocab_size, config):
    """The classifier: characters -> one logit, the log-odds that the poem is real."""
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(vocab_size, config.embed_dim, mask_zero=True)(ids)  # PAD (0) is masked
    x = keras.layers.GRU(config.units)(x)
    return keras.Model(ids, keras.layers.Dense(1)(x), name="critic")


def encode(vocab, texts):
    """Int32 (len(texts), longest) ids, PAD after each poem."""
    ids = np.full((len(texts), max((len(t) for t in texts), default=1) or 1), vocab_lib.PAD, np.int32)
    for row, text in enumerate(texts):
        ids[row, : len(text)] = vocab.encode(text)
    return ids


class Critic:
    """A trained critic and the vocabulary it reads; ``score`` gives each poem's log-odds of being real."""

    def __init__(self, model, vocab, config):
        self.model, self.vocab, self.config = model, vocab, config
        # One trace for every batch shape (a shape-specific first trace, then a relaxed one, cost a fresh
        # ``write`` 0.4 s); Keras' layers need no autograph.
        self._logits = tf.function(lambda ids: self.model(ids, training=False)[:, 0], autograph=False,
                                   input_signature=[tf.TensorSpec([None, None], tf.int32)])

    def score(self, texts):
        """Float32 log-odds per text: above 0, the critic takes it for a real poem."""
        if not texts:
            return np.zeros(0, np.float32)
        return self._logits(tf.constant(encode(self.vocab, texts))).numpy()

    def save(self, model_dir, measured):
        """Write ``model_dir``/critic/: config (with ``measured``: what it was trained on, how well) and weights."""
        folder = os.path.join(model_dir, FOLDER)
        record = {"critic": dataclasses.asdict(self.config), "vocab_fingerprint": self.vocab.fingerprint,
                  "measured": measured}
        arrays = {f"w{i}": w.astype(np.float16) for i, w in enumerate(self.model.get_weights())}
        with files.atomic_write(os.path.join(folder, WEIGHTS), "wb") as handle:
            np.savez(handle, **arrays)
        files.write_text(os.path.join(folder, CONFIG), json.dumps(record, ensure_ascii=False, indent=1) + "\n")
        return folder


def load(model_dir, vocab):
    """The critic in ``model_dir``/critic/, or None when the model has none; PoetryError if it does not fit."""
    folder = os.path.join(model_dir, FOLDER)
    if not os.path.exists(os.path.join(folder, CONFIG)):
        return None
    with open(os.path.join(folder, CONFIG), encoding="utf-8") as handle:
        record = json.load(handle)
    if record.get("vocab_fingerprint") != vocab.fingerprint:
        raise PoetryError(f"{folder} was trained on another vocabulary than {model_dir}'s; train it again with "
                          f"python -m poetry_rnn.critic --model_dir {model_dir}")
    config = CriticConfig(**record["critic"])
    model = build(len(vocab), config)
    with np.load(os.path.join(folder, WEIGHTS)) as arrays:
        weights = [arrays[f"w{i}"].astype(np.float32) for i in range(len(arrays.files))]
    if [w.shape for w in weights] != [tuple(w.shape) for w in model.weights]:
        raise PoetryError(f"{folder}/{WEIGHTS} does not fit its config.json")
    model.set_weights(weights)
    return Critic(model, vocab, config)


def fit(vocab, real, generated, config):
    """A Critic trained on ``real`` against ``generated`` poems (as many of each), and its held-out accuracy."""
    rng = np.random.default_rng(config.seed)
    size = min(len(real), len(generated))
    if size < 10:
        raise PoetryError(f"a critic needs at least 10 poems of each kind, got {len(real)} real, {len(generated)} generated")
    real = [real[i] for i in rng.permutation(len(real))[:size]]
    generated = [generated[i] for i in rng.permutation(len(generated))[:size]]
    kept = max(1, int(size * config.held_out))
    texts = real[kept:] + generated[kept:]
    labels = np.array([1.0] * (size - kept) + [0.0] * (size - kept), np.float32)
    order = rng.permutation(len(texts))
    keras.utils.set_random_seed(config.seed)  # here, not in build: loading a critic must not reseed the process
    model = build(len(vocab), config)
    model.compile(keras.optimizers.Adam(config.learning_rate), keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(encode(vocab, [texts[i] for i in order]), labels[order], batch_size=64, epochs=config.epochs,
              shuffle=True, verbose=0)
    critic = Critic(model, vocab, config)
    right = np.sum(critic.score(real[:kept]) > 0) + np.sum(critic.score(generated[:kept]) <= 0)
    return critic, float(right / (2 * kept))
