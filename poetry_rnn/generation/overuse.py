"""Which characters a model over-uses in each form and place in the line, against real poems: the over-use processor's table.

A character model leans on its commonest characters more than poets do:
the shipped model's 五律 give the 50 commonest 26.8 % of their text, real
五律 21.9 % (山 月 秋 花 风 春 江 愁 more; 然 名 能 言 吾 车 衣 less). A
real-vs-generated judge reads exactly that, and most of all where a line
begins and ends: after a per-form pull, a line of the model's 五律 still
began with 风 1.4 % of the time and 遥 0.6 % (real: 0.8 and 0.2) and ended
with 侣 or 频 three times as often as a poet's. ``learn`` compares the Han
characters of the model's own drafts of a form with those of the training
split's poems of that form, at each of ``PLACES`` (a line's first
character, its last, the others), and gives each character the log of how
much more often the drafts use it there, with ``PSEUDO_USES`` on each side
(a rare character's count says little) and clipped to ±``CLIP``. A free
poem's line may end anywhere, so the decoder cannot know its last
character is one: a free poem's line ends count as inside.
``processors.Overuse`` subtracts ``overuse_penalty`` times the row of the
poem's form and the step's place inside the nucleus. ``python -m
poetry_rnn.critic`` writes it, from the drafts it writes for the critic, as
``overuse.npz`` in the model directory.
"""

import collections
import itertools
import os

import numpy as np

from poetry_rnn.infra import files
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.verse import forms, prosody

FILE = "overuse.npz"
PLACES = ("inside", "line start", "line end")  # a row per form and place, in this order
PSEUDO_USES = 20  # added to each character's count on both sides
CLIP = 2.0  # no character is pulled by more than this (times the penalty)


class OveruseTable:
    """Per form and place in the line, each token's over-use: log(drafts' uses / real uses), 0 for tokens that
    are not Han characters.

    ``bias`` row 0 is all zeros, for poems of no form the table knows
    (templates, ci, forms it was not learnt for); row 1 + len(PLACES) k + p
    is ``form_names[k]``'s at ``PLACES[p]``.
    """

    def __init__(self, form_names, bias, fingerprint):
        self.form_names, self.bias, self.fingerprint = tuple(form_names), np.asarray(bias, np.float32), fingerprint
        if self.bias.shape[0] != 1 + len(PLACES) * len(self.form_names) or np.any(self.bias[0]):
            raise PoetryError(f"an over-use table needs a zero row and {len(PLACES)} per form, got "
                              f"{self.bias.shape[0]} rows for {len(self.form_names)} forms")

    @classmethod
    def learn(cls, vocab, drafts, real, base=None):
        """From ``drafts`` and ``real``, {form: texts} each: the drafts' Han characters against the real ones',
        place by place; added to ``base`` (the table the drafts were pulled by at penalty 1), if given."""
        names = [form for form in drafts if drafts[form] and real.get(form)]
        if base is not None and base.form_names != tuple(names):
            raise PoetryError(f"the drafts are of {', '.join(names)}, but the table they were pulled by knows "
                              f"{', '.join(base.form_names)}")
        bias = np.zeros((1 + len(PLACES) * len(names), len(vocab)), np.float32)
        han = [i for i, token in enumerate(vocab.tokens) if prosody.is_han(token)]
        chars = [vocab.tokens[i] for i in han]
        for k, form in enumerate(names):
            ends_known = form != forms.FREE
            for place, written, read in zip(range(len(PLACES)), _place_counts(drafts[form], ends_known),
                                            _place_counts(real[form], ends_known)):
                if not written or not read:
                    continue  # a place the form never has (a free poem's known line end): no pull there
                expected = np.array([read[c] for c in chars]) * (sum(written.values()) / sum(read.values()))
                ratio = (np.array([written[c] for c in chars]) + PSEUDO_USES) / (expected + PSEUDO_USES)
                bias[_row(k, place), han] = np.log(ratio)
        if base is not None:
            bias += base.bias
        return cls(names, np.clip(bias, -CLIP, CLIP), vocab.fingerprint)

    def rows(self, requests):
        """int32 (B,): each request's first row of ``bias``, its form's at ``PLACES[0]`` (0 for a template, a
        ci or a form it does not know); the decoder adds the step's place."""
        row = {form: _row(k, 0) for k, form in enumerate(self.form_names)}
        return np.array([0 if r.template or r.cipai else row.get(r.form, 0) for r in requests], np.int32)

    def row(self, form, place):
        """(V,): ``form``'s over-use at ``place`` (one of PLACES)."""
        return self.bias[_row(self.form_names.index(form), PLACES.index(place))]

    def most(self, form, vocab, n=10, place=PLACES[0]):
        """The ``n`` most over-used and most under-used characters of ``form`` at ``place``: what the model
        card quotes."""
        order = np.argsort(self.row(form, place))
        return ("".join(vocab.tokens[i] for i in order[::-1][:n]), "".join(vocab.tokens[i] for i in order[:n]))

    def save(self, model_dir):
        with files.atomic_write(os.path.join(model_dir, FILE), "wb") as handle:
            np.savez_compressed(handle, forms=np.array(self.form_names), bias=self.bias.astype(np.float16),
                     fingerprint=np.array(self.fingerprint))
        return os.path.join(model_dir, FILE)


def load(model_dir, vocab):
    """The over-use table in ``model_dir``, or None when it has none; PoetryError if it was learnt for another
    vocabulary."""
    path = os.path.join(model_dir, FILE)
    if not os.path.exists(path):
        return None
    relearn = f"learn it again with python -m poetry_rnn.critic --model_dir {model_dir} --learn overuse"
    with np.load(path) as stored:
        names, bias, fingerprint = [str(f) for f in stored["forms"]], stored["bias"], str(stored["fingerprint"])
    if bias.shape[0] != 1 + len(PLACES) * len(names):
        raise PoetryError(f"{path} has {bias.shape[0]} rows for {len(names)} forms, not one per form and place "
                          f"in the line (an older table); {relearn}")
    table = OveruseTable(names, bias, fingerprint)
    if table.fingerprint != vocab.fingerprint or table.bias.shape[1] != len(vocab):
        raise PoetryError(f"{path} was learnt for another vocabulary than {model_dir}'s; {relearn}")
    unknown = [f for f in table.form_names if f not in forms.FORM_NAMES]
    if unknown:
        raise PoetryError(f"{path} has a table for {unknown[0]!r}, which is not a form")
    return table


def _row(form_index, place_index):
    """The row of ``bias`` that holds the form's over-use at the place: after the zero row, PLACES rows per form."""
    return 1 + len(PLACES) * form_index + place_index


def _place_counts(texts, ends_known):
    """A Counter of Han characters per place of ``PLACES``. A line is a run of Han characters, as the decoder
    sees it: one begins after any other token."""
    counts = tuple(collections.Counter() for _ in PLACES)
    inside, start, end = counts
    for text in texts:
        for line in (list(run) for han, run in itertools.groupby(text, prosody.is_han) if han):
            start[line[0]] += 1
            inside.update(line[1:-1])
            if len(line) > 1:
                (end if ends_known else inside)[line[-1]] += 1
    return counts
