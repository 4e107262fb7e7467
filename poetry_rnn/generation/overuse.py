"""Which characters a model over-uses in each form, against real poems of that form: the over-use processor's table.

A character model leans on its commonest characters more than poets do:
the shipped model's 五律 give the 50 commonest 26.8 % of their text, real
五律 21.9 % (山 月 秋 花 风 春 江 愁 more; 然 名 能 言 吾 车 衣 less). A
real-vs-generated judge reads exactly that. ``learn`` compares the Han
characters of the model's own drafts of a form with those of the training
split's poems of that form, and gives each character the log of how much
more often the drafts use it, with ``PSEUDO_USES`` on each side (a rare
character's count says little) and clipped to ±``CLIP``;
``processors.Overuse`` subtracts ``overuse_penalty`` times it inside the
nucleus. ``python -m poetry_rnn.critic`` writes it, from the drafts it
writes for the critic, as ``overuse.npz`` in the model directory.
"""

import collections
import os

import numpy as np

from poetry_rnn.infra import files
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.verse import forms, prosody

FILE = "overuse.npz"
PSEUDO_USES = 20  # added to each character's count on both sides
CLIP = 2.0  # no character is pulled by more than this (times the penalty)


class OveruseTable:
    """Per form, each token's over-use: log(drafts' uses / real uses), 0 for tokens that are not Han characters.

    ``bias`` row 0 is all zeros, for poems of no form the table knows
    (templates, ci, forms it was not learnt for); row k + 1 is
    ``form_names[k]``'s.
    """

    def __init__(self, form_names, bias, fingerprint):
        self.form_names, self.bias, self.fingerprint = tuple(form_names), np.asarray(bias, np.float32), fingerprint
        if self.bias.shape[0] != len(self.form_names) + 1 or np.any(self.bias[0]):
            raise PoetryError(f"an over-use table needs a zero row and one per form, got {self.bias.shape[0]} rows "
                              f"for {len(self.form_names)} forms")

    @classmethod
    def learn(cls, vocab, drafts, real):
        """From ``drafts`` and ``real``, {form: texts} each: the drafts' Han characters against the real ones'."""
        names = [form for form in drafts if drafts[form] and real.get(form)]
        bias = np.zeros((len(names) + 1, len(vocab)), np.float32)
        han = [i for i, token in enumerate(vocab.tokens) if prosody.is_han(token)]
        for row, form in enumerate(names, start=1):
            written, read = _han_counts(drafts[form]), _han_counts(real[form])
            ratio = sum(written.values()) / sum(read.values())
            for i in han:
                c = vocab.tokens[i]
                expected = read[c] * ratio
                bias[row, i] = np.clip(np.log((written[c] + PSEUDO_USES) / (expected + PSEUDO_USES)), -CLIP, CLIP)
        return cls(names, bias, vocab.fingerprint)

    def rows(self, requests):
        """int32 (B,): each request's row of ``bias`` (0 for a template, a ci or a form it does not know)."""
        row = {form: k for k, form in enumerate(self.form_names, start=1)}
        return np.array([0 if r.template or r.cipai else row.get(r.form, 0) for r in requests], np.int32)

    def most(self, form, vocab, n=10):
        """The ``n`` most over-used and most under-used characters of ``form``: what the model card quotes."""
        bias = self.bias[self.form_names.index(form) + 1]
        order = np.argsort(bias)
        return ("".join(vocab.tokens[i] for i in order[::-1][:n]), "".join(vocab.tokens[i] for i in order[:n]))

    def save(self, model_dir):
        with files.atomic_write(os.path.join(model_dir, FILE), "wb") as handle:
            np.savez(handle, forms=np.array(self.form_names), bias=self.bias.astype(np.float16),
                     fingerprint=np.array(self.fingerprint))
        return os.path.join(model_dir, FILE)


def load(model_dir, vocab):
    """The over-use table in ``model_dir``, or None when it has none; PoetryError if it was learnt for another
    vocabulary."""
    path = os.path.join(model_dir, FILE)
    if not os.path.exists(path):
        return None
    with np.load(path) as stored:
        table = OveruseTable([str(f) for f in stored["forms"]], stored["bias"], str(stored["fingerprint"]))
    if table.fingerprint != vocab.fingerprint or table.bias.shape[1] != len(vocab):
        raise PoetryError(f"{path} was learnt for another vocabulary than {model_dir}'s; learn it again with "
                          f"python -m poetry_rnn.critic --model_dir {model_dir}")
    unknown = [f for f in table.form_names if f not in forms.FORM_NAMES]
    if unknown:
        raise PoetryError(f"{path} has a table for {unknown[0]!r}, which is not a form")
    return table


def _han_counts(texts):
    return collections.Counter(c for text in texts for c in text if prosody.is_han(c))
