"""Poems from requests: plan them, draft each ``best_of`` times in one batch, keep the best.

``generate`` writes poem requests, ``continue_streams`` continues lyrics
prefixes; both take one ``options.SamplingOptions`` for all requests or one
per request (coalesced asks keep their own), expand each request into its
drafts, decode them with a ``sampler.Decoder`` and rank them
(``ranking.best_per_request``). Their two halves, ``draft_poems`` or
``draft_streams`` and then ``rank``, serve a caller that decodes one
request's drafts in parts (the facade's chunks of a long request). How the
model reads a prompt comes from the decoder's model (``Decoder.config``),
never from the caller.
"""

import dataclasses

import numpy as np

from poetry_rnn.generation import constraints, noise
from poetry_rnn.generation.processors import ReuseTable, per_row
from poetry_rnn.generation.ranking import REUSE_WINDOW, AskMemory, Ranking, best_per_request, round_start
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.options import SamplingOptions
from poetry_rnn.verse import poem_request


@dataclasses.dataclass
class Draft:
    """One decoded poem: what ``write`` keeps or ranks away (the facade turns the winner into a ``poet.Poem``)."""

    request: object  # the poem_request.PoemRequest it answers
    title: str
    content: str
    logprobs: list  # log p of each content token (EOS included) under the model
    ended: bool  # reached EOS (a free poem may be cut at max_len instead)
    critic: float = None  # the critic's log-odds that it is real, when drafts were ranked with one
    copied: bool = False  # word for word a poem the model trained on (``model.training_poems``), where it keeps them
    forced: float = 0.0  # nats the masks took from the model's choice (``sampler.Decoded.forced``)

    @property
    def mean_logprob(self):
        return float(np.mean(self.logprobs)) if self.logprobs else float("-inf")


def per_request(sampling, n):
    """One SamplingOptions per request: ``sampling`` is one for all or a list of n."""
    if isinstance(sampling, SamplingOptions):
        return [sampling] * n
    if len(sampling) != n:
        raise PoetryError(f"{len(sampling)} sampling settings for {n} requests")
    return list(sampling)


def sampling_rows(sampling, indices, copies=None):
    """The drafts' rows: the request of each row, and per-row settings for ``Decoder.decode``.

    ``sampling`` has one SamplingOptions per request, expanded ``best_of``
    times, or over ``copies[i]`` (a range of copy numbers) where given. A
    row's noise key is ``noise.row_key(seed, index, copy)``: ``indices[i]``
    is request i's number in its caller's ask, so a draft is the same whether
    its request's drafts are decoded together or in parts.
    """
    n = len(sampling)
    best_of = np.array([s.best_of for s in sampling], np.int64)
    seeds = np.array([s.seed or 0 for s in sampling], np.int64)
    index = per_row(indices, n, np.int64)
    if np.any(best_of < 1) or np.any(best_of > noise.MAX_COPIES):
        raise PoetryError(f"best_of must be in [1, {noise.MAX_COPIES}], got {best_of.min()}..{best_of.max()}")
    if np.any(seeds >= noise.MAX_SEED) or np.any(index < 0) or np.any(index >= noise.MAX_INDEX):
        raise PoetryError(f"seeds must be in [0, {noise.MAX_SEED}) and at most {noise.MAX_INDEX} poems in one ask")
    copies = [range(b) for b in best_of] if copies is None else copies
    owner = np.repeat(np.arange(n), [len(c) for c in copies])
    copy = np.concatenate([np.arange(c.start, c.stop, dtype=np.int64) for c in copies])
    settings = {field.name: np.array([getattr(sampling[i], field.name) for i in owner])
                for field in dataclasses.fields(SamplingOptions)}
    settings["keys"] = noise.row_key(seeds[owner], index[owner], copy)
    return owner, settings


def rankings_for(sampling, ranking=None):
    """One Ranking per request: ``ranking`` for all, else from each request's ranking options."""
    if ranking is not None:
        return [ranking] * len(sampling)
    return [Ranking(novelty_weight=float(s.novelty_weight), rhyme_bonus=float(s.rhyme_bonus),
                    critic_weight=float(s.critic_weight), forcing_weight=float(s.forcing_weight),
                    allow_copies=bool(s.allow_copies)) for s in sampling]


def criticise(candidates, sampling, owner, critic):
    """Give each draft its critic score, where a critic is there and its request ranks drafts with one.

    Drafts written to keywords are left to likelihood and the keyword term:
    the critic, which prefers surprise, kept fewer keywords (84.0 % of 200
    prompts against 88.2 % without it), and keywords are the user's own ask.
    """
    wanted = [k for k, i in enumerate(owner)
              if sampling[i].critic_weight > 0 and sampling[i].best_of > 1 and not candidates[k].request.keywords]
    if critic is None or not wanted:
        return
    for k, score in zip(wanted, critic.score([candidates[k].content for k in wanted])):
        candidates[k].critic = float(score)


@dataclasses.dataclass
class Placement:
    """Where a batch of requests stands in its callers' asks (default: one ask, numbered from 0).

    indices: each request's number in its ask (keys its noise, orders its rounds)
    groups:  each request's ask, for the novelty term and the reuse penalty
    memory:  a ranking.AskMemory of the poems each ask has kept so far
    """

    indices: np.ndarray
    groups: list
    memory: AskMemory

    @classmethod
    def of(cls, n, indices=None, groups=None, memory=None):
        return cls(np.arange(n) if indices is None else per_row(indices, n, np.int64),
                   [0] * n if groups is None else list(groups), AskMemory() if memory is None else memory)

    def pick(self, picked):
        return Placement(self.indices[picked], [self.groups[k] for k in picked], self.memory)


def generate(decoder, vocab, requests, sampling, placement=None, ranking=None, critic=None, known=None, overuse=None):
    """Poems for ``requests``; with ``best_of`` > 1, the best draft per request.

    ``sampling`` is one SamplingOptions or one per request; ``ask`` (a
    :class:`Ask`) places the requests in their asks. ``ranking`` (which can
    carry an n-gram second opinion) replaces each request's
    ``Ranking``; ``critic`` (a ``critic.Critic``) scores the drafts of
    requests whose ``critic_weight`` asks for it; ``known`` (the model's
    ``training_poems.TrainingPoems``) marks the drafts that copy a training
    poem, which the ranking puts last; ``overuse`` (the model's
    ``overuse.OveruseTable``) is what requests with an over-use penalty
    pull against. Requests with a reuse penalty
    are decoded round by round (``ranking.round_start``), each round
    penalising the character pairs of the rounds before it in its ask; the
    others in the first call.
    """
    sampling = per_request(sampling, len(requests))
    ask = placement or Placement.of(len(requests))
    rounds = np.array([round_start(i) if s.reuse_penalty > 0 else 0 for i, s in zip(ask.indices, sampling)], np.int64)
    poems = [None] * len(requests)
    for start in np.unique(rounds):
        picked = np.flatnonzero(rounds == start)
        out = _generate_round(decoder, vocab, [requests[k] for k in picked], [sampling[k] for k in picked],
                              ask.pick(picked), ranking, critic, known, overuse)
        for k, poem in zip(picked, out):
            poems[k] = poem
    return poems


def _reuse_table(vocab, ask, owner):
    """The reuse processor's setting: one table row per (ask, round), and each draft's row."""
    sets = [(group, round_start(i)) for group, i in zip(ask.groups, ask.indices)]
    number = {key: k for k, key in enumerate(dict.fromkeys(sets))}
    table = ReuseTable.build(vocab, [ask.memory.bigrams(group, before=start, window=REUSE_WINDOW)
                                     for group, start in number])
    return table, np.array([number[sets[i]] for i in owner], np.int32)


def _generate_round(decoder, vocab, requests, sampling, ask, ranking, critic, known, overuse):
    """``generate``'s decode of one round: its requests' drafts in one batch, the best of each kept."""
    candidates, owner = draft_poems(decoder, vocab, requests, sampling, ask, critic, known=known, overuse=overuse)
    return rank(candidates, owner, sampling, ask, ranking)


def draft_poems(decoder, vocab, requests, sampling, placement=None, critic=None, copies=None, known=None,
                overuse=None):
    """The drafts of ``requests`` in one batch, not ranked: (Drafts, each one's request number).

    ``copies`` (one range per request, default all ``best_of``) lets a caller
    decode one request's drafts in parts, e.g. the facade's chunks of a long
    request, and ``rank`` them when all are in: the drafts, and so the poem,
    are the same as ``generate``'s. The reuse penalty (if any) reads the
    poems kept before each request's round, as ``generate`` does.
    """
    sampling = per_request(sampling, len(requests))
    ask = placement or Placement.of(len(requests))
    owner, settings = sampling_rows(sampling, ask.indices, copies)
    if np.any(settings["reuse_penalty"] > 0):
        settings["reuse"] = _reuse_table(vocab, ask, owner)
    expanded = [requests[i] for i in owner]
    if overuse is not None:
        settings["overuse"] = overuse, overuse.rows(expanded)
    plan = constraints.plan(expanded, vocab, decoder.config)
    decoded = decoder.decode(plan, **settings)
    candidates = []
    for b, request in enumerate(expanded):
        steps, start = decoded.length(b), int(plan.content_start[b])
        content = vocab.decode(decoded.tokens[b][start:])
        candidates.append(Draft(request, request.title, content, decoded.logprobs[b, start:steps].tolist(),
                                bool(decoded.ended[b]), copied=known is not None and known.holds(content),
                                forced=float(decoded.forced[b])))
    criticise(candidates, sampling, owner, critic)
    return candidates, owner


def rank(candidates, owner, sampling, placement, ranking=None):
    """The best draft of each request (one SamplingOptions each), kept in ``placement``'s memory."""
    return best_per_request(candidates, owner, len(sampling), rankings_for(sampling, ranking), placement.groups,
                            placement.memory, placement.indices)


def continue_streams(decoder, vocab, prefixes, length, sampling, placement=None):
    """Lyrics streams, as d2l's ``predict_rnn``: feed each prefix, then add ``length`` characters.

    A stream model never saw BOS, so the first prefix character is the first
    input, from zero states (an empty prefix starts from a space, the line
    break of the joined text); the rest of the prefix is forced, then exactly
    ``length`` characters are sampled (EOS is never allowed: a stream has no
    end). Returns one ``Draft`` per prefix (best of ``best_of``): its content
    is the prefix followed by the new characters, its logprobs those of the
    new characters only. Drafts are ranked as ``generate`` ranks them.
    """
    sampling = per_request(sampling, len(prefixes))
    ask = placement or Placement.of(len(prefixes))
    candidates, owner = draft_streams(decoder, vocab, prefixes, length, sampling, ask)
    return rank(candidates, owner, sampling, ask)


def draft_streams(decoder, vocab, prefixes, length, sampling, placement=None, copies=None):
    """``continue_streams``' drafts, not ranked: (Drafts, each one's prefix number); ``copies`` as ``draft_poems``."""
    if length < 1:
        raise PoetryError(f"length must be at least 1, got {length}")
    for prefix in prefixes:
        missing = [c for c in prefix or " " if c not in vocab]
        if missing:
            raise PoetryError(f"prefix character {missing[0]!r} is not in the model's vocabulary")
    sampling = per_request(sampling, len(prefixes))
    ask = placement or Placement.of(len(prefixes))
    owner, settings = sampling_rows(sampling, ask.indices, copies)
    expanded = [prefixes[i] for i in owner]
    forced = [max(len(p) - 1, 0) for p in expanded]
    requests = [poem_request.PoemRequest(begin=p[1:], max_len=f + length, stop_at_eos=False) for p, f in zip(expanded, forced)]
    plan = constraints.plan(requests, vocab)
    start = np.array([vocab.id(p[:1] or " ") for p in expanded], np.int32)
    decoded = decoder.decode(plan, start=start, **settings)
    candidates = [
        Draft(poem_request.PoemRequest(begin=p, max_len=len(p) + length, stop_at_eos=False), "",
              p + vocab.decode(decoded.tokens[b, f : f + length]), decoded.logprobs[b, f : f + length].tolist(), False)
        for b, (p, f) in enumerate(zip(expanded, forced))
    ]
    return candidates, owner
