"""Choosing among drafts, and what an ask remembers of the poems it has written.

``drafts.generate`` drafts each request ``best_of`` times; ``best_per_request``
keeps the draft with the highest :class:`Ranking` score. An
:class:`AskMemory` holds the character pairs (bigrams) of the poems already
chosen in each ask: the ranking's novelty term reads them, and so does the
decoder's reuse penalty, round by round (``round_start``). This module
imports no TensorFlow.
"""

import collections
import dataclasses

from poetry_rnn.verse import forms, poem_request, prosody

# The reuse penalty's rounds grow to ROUND_MAX poems, and a round avoids the pairs of the
# REUSE_WINDOW poems before it: an ask of any size then varies as much as one of a few
# hundred poems. Avoiding every pair of a thousand poems pushes the last ones far from the
# common phrases real poems use too (1,000 七绝 at temperature 0.8 and penalty 1.5 scored
# 1.31x the real poems' 5-gram perplexity, against 1.06x for 300).
ROUND_MAX, REUSE_WINDOW = 128, 256


class AskMemory:
    """What the poems already chosen in each ask (a group of requests) wrote: their bigrams, by poem index.

    The ranking's novelty term reads all of a group's poems so far; the
    reuse penalty reads those of the REUSE_WINDOW poems before a poem's
    round (``round_start``), so a poem is the same however its ask is cut
    into decode calls.
    """

    def __init__(self):
        self._poems = collections.defaultdict(dict)  # group -> {index: bigrams}
        self._all = collections.defaultdict(set)  # group -> the union, for the novelty term

    def add(self, group, index, content):
        self._poems[group][index] = forms.bigrams(content)
        self._all[group].update(self._poems[group][index])

    def bigrams(self, group, before=None, window=None):
        """The bigrams of the group's poems; read-only.

        With ``before``, only those of poems with an index below it, and with
        ``window`` too, of the ``window`` poems before it.
        """
        if before is None:
            return self._all[group]
        first = 0 if window is None else before - window
        return {b for i, pairs in self._poems[group].items() if first <= i < before for b in pairs}


def round_start(index):
    """The first poem index of poem ``index``'s round: 0, 1, 2-3, 4-7, ..., 64-127, then 128 at a time.

    Under a reuse penalty an ask is decoded round by round, each round
    avoiding what the rounds before it wrote (at most REUSE_WINDOW poems):
    every poem sees at least half of the poems before it, or of the window,
    in about log2(n) decode calls for n <= 2 * ROUND_MAX poems.
    """
    index = int(index)
    if index >= ROUND_MAX:
        return index - index % ROUND_MAX
    return 0 if index == 0 else 1 << (index.bit_length() - 1)


@dataclasses.dataclass(frozen=True)
class Ranking:
    """How ``best_of`` ranks the drafts of one request: the highest score wins.

    score = mean log p per token under the model (length-normalised, so a
    short free poem is not preferred for being short)
          + ngram_weight * mean log p per token under ``ngram`` (a fitted
            ``ngram.KneserNey``: a second opinion that has read the corpus
            as it is, not as the network remembers it)
          + rhyme_bonus * (the even lines rhyme, ``prosody.rhyme_ok`` in the
            request's scheme; free poems, whose rhyme no mask enforces)
          - novelty_weight * (share of the draft's bigrams that poems already
            chosen in this batch use: ranking alone prefers the model's
            favourite phrases, and a batch of poems should not all share them)
          + keyword_weight * (share of the request's keywords the draft holds:
            a draft with all its keywords beats one with none unless the
            latter is a nat per character more likely)
          + critic_weight * (the critic's log-odds that the draft is a real
            poem, ``critic.Critic``, when the model carries one)
          - forcing_weight * (nats per token the masks took from the model's
            own choice, ``Draft.forced``: the log-probability already counts
            a forced rhyme once, but also rewards the likeliest characters;
            this counts the forcing alone, so a draft whose lines were
            heading for their rhymes and tones wins over the most likely one)

    A draft that copies a training poem word for word (``Draft.copied``)
    loses to every draft that does not, whatever its score, unless
    ``allow_copies``.
    """

    ngram: object = None
    ngram_weight: float = 0.0
    rhyme_bonus: float = 0.0
    novelty_weight: float = 0.0
    keyword_weight: float = 1.0
    critic_weight: float = 0.0
    forcing_weight: float = 0.0
    allow_copies: bool = False

    def key(self, poem, seen=frozenset()):
        """What ``best_per_request`` maximises: (not a copy of a training poem, ``score``)."""
        return (self.allow_copies or not poem.copied, self.score(poem, seen))

    def score(self, poem, seen=frozenset()):
        total = poem.mean_logprob
        if self.novelty_weight:
            bigrams = forms.bigrams(poem.content)
            total -= self.novelty_weight * (sum(b in seen for b in bigrams) / len(bigrams) if bigrams else 0.0)
        if self.ngram is not None and self.ngram_weight:
            total += self.ngram_weight * self.ngram.mean_logprob(poem.content)
        if self.rhyme_bonus and not poem.request.rhymed:
            lines = forms.split_lines(poem.content)
            total += self.rhyme_bonus * prosody.rhyme_ok(lines, scheme=poem_request.scheme_of(poem.request))
        keywords = poem.request.keywords
        if self.keyword_weight and keywords:
            total += self.keyword_weight * sum(c in poem.content for c in keywords) / len(keywords)
        if self.critic_weight and poem.critic is not None:
            total += self.critic_weight * poem.critic
        if self.forcing_weight and poem.logprobs:
            total -= self.forcing_weight * poem.forced / len(poem.logprobs)
        return total


def best_per_request(candidates, owner, n, rankings=None, groups=None, memory=None, indices=None):
    """The candidate with the highest score under its request's ranking (default: mean log-probability).

    Requests are ranked in order, so a novelty term knows the bigrams of the
    poems already chosen in the same group (``groups[i]``: by default one
    group for all), and each chosen poem is added to ``memory`` (an
    :class:`AskMemory`) under its group and its index (``indices[i]``,
    default i). Pass the same memory to later calls to continue a group (the
    facade does, per ask, so a poem does not depend on what else was decoded
    beside it).
    """
    rankings = rankings or [Ranking()] * n
    groups = [0] * n if groups is None else groups
    indices = range(n) if indices is None else indices
    memory = AskMemory() if memory is None else memory
    drafts = [[] for _ in range(n)]
    for poem, i in zip(candidates, owner):
        drafts[i].append(poem)
    best = []
    for options, group, index, ranking in zip(drafts, groups, indices, rankings):
        used = memory.bigrams(group)
        best.append(options[0] if len(options) == 1 else max(options, key=lambda p: ranking.key(p, used)))
        memory.add(group, int(index), best[-1].content)
    return best
