"""The in-graph batched sampler: one tf.function writes a whole batch of poems.

Every kind of poem, free or constrained, is decoded by the same loop: at each
step the model advances one character for the whole batch (``model.step``),
the step's allowed-token mask is looked up, the dynamic rhyme mask is ANDed
in where a rhyme falls, and a token is sampled (greedy, temperature, top-k,
top-p) from the masked logits; the pair mask (neighbours that would change
how a character is heard) and the no-repeat mask are ANDed in the same way.
Soft pulls (keywords, title, line ends) are added to the logits, and the
reuse penalty subtracted where a character would repeat a character pair an
earlier poem of the same ask wrote (``ranking.AskMemory``).
A ``constraints.DecodePlan`` says what is
allowed where; the decoder knows nothing about forms. It runs in a
``tf.while_loop`` with no Python per character, and stops when every poem has
emitted EOS or reached its length.

Sampling uses stateless random ops seeded by ``(seed, step)``, so the same
seed gives the same poems, and only ops XLA can compile.
"""

import collections
import dataclasses

import numpy as np
import tensorflow as tf

from poetry_rnn import constraints, poem_request, vocab as vocab_lib
from poetry_rnn.ranking import REUSE_WINDOW, AskMemory, Ranking, best_per_request, round_start
from poetry_rnn.errors import PoetryError

NEG_INF = float("-inf")


@dataclasses.dataclass
class Decoded:
    """Generated tokens, for B poems and the T steps that were run."""

    tokens: np.ndarray  # int32 (B, T): PAD after a poem ended
    logprobs: np.ndarray  # float32 (B, T): log p(token) under the unmasked model, 0 after the end
    ended: np.ndarray  # bool (B,): emitted EOS (False = cut at its length)

    def steps(self, b):
        """Number of tokens poem ``b`` produced, its EOS included."""
        return int(np.sum(self.tokens[b] != vocab_lib.PAD))


# Row keys: each poem's random stream is keyed by (seed, index, copy), not by its
# place in the batch, so a poem is the same alone, in a batch of others, or in a
# server's coalesced batch. seed < 2**31, index < 2**20, copy < 2**12 fit one int64.
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
    golden = tf.constant(0x9E3779B97F4A7C15, tf.uint64)
    row = _splitmix64(tf.bitcast(keys, tf.uint64) * golden + tf.cast(step, tf.uint64))  # (B,)
    x = _splitmix64(row[:, None] + tf.cast(tf.range(vocab_size), tf.uint64)[None, :] * golden)  # (B, V)
    top24 = tf.bitwise.right_shift(x, tf.constant(40, tf.uint64))
    return (tf.cast(top24, tf.float32) + 0.5) * (1.0 / 2**24)


def filter_logits(logits, allowed, temperature, top_k, top_p):
    """Masked, temperature-scaled logits with top-k and top-p applied (-inf = excluded).

    ``temperature``, ``top_k`` and ``top_p`` are per row (B,): coalesced
    requests keep their own settings. top_k 0 and top_p 1 are off.
    """
    scaled = tf.where(allowed, logits / tf.maximum(temperature, 1e-6)[:, None], NEG_INF)

    def keep_top_k():
        k_max = tf.clip_by_value(tf.reduce_max(top_k), 1, tf.shape(scaled)[-1])  # >= 1: XLA compiles this branch
        best = tf.math.top_k(scaled, k_max).values
        kth = tf.gather(best, tf.clip_by_value(top_k - 1, 0, k_max - 1), batch_dims=1)[:, None]
        return tf.where((top_k[:, None] > 0) & (scaled < kth), NEG_INF, scaled)

    scaled = tf.cond(tf.reduce_any(top_k > 0), keep_top_k, lambda: scaled)

    def keep_top_p():
        ordered = tf.sort(scaled, direction="DESCENDING")
        before = tf.math.cumsum(tf.nn.softmax(ordered), axis=-1, exclusive=True)
        # The smallest logit still inside the nucleus. The top token always is, even for a top_p that
        # float32 rounds to 0 (a denormal such as 1e-45), where `before < top_p` would keep nothing.
        inside = (before < top_p[:, None]) | (tf.range(tf.shape(ordered)[-1]) == 0)[None, :]
        threshold = tf.reduce_min(tf.where(inside, ordered, tf.float32.max), axis=-1, keepdims=True)
        return tf.where((top_p[:, None] < 1.0) & (scaled < threshold), NEG_INF, scaled)

    return tf.cond(tf.reduce_any(top_p < 1.0), keep_top_p, lambda: scaled)


def per_row(value, rows, dtype):
    """``value`` (a scalar or one per row) as a numpy array of ``rows`` values."""
    return np.broadcast_to(np.asarray(value, dtype), (rows,)).copy()


@dataclasses.dataclass
class ReuseTable:
    """Character pairs to avoid, for the decoder: what followed each character in some poems.

    index:      int32 (G, V), the row of ``successors`` for (set g, previous
                token v); row 0 is empty
    successors: int32 (R, K), the tokens written after it, padded with V
    """

    index: np.ndarray
    successors: np.ndarray

    @classmethod
    def empty(cls, vocab_size, sets=1):
        return cls(np.zeros((sets, vocab_size), np.int32), np.full((1, 1), vocab_size, np.int32))

    @classmethod
    def build(cls, vocab, bigram_sets):
        """One set per entry of ``bigram_sets`` (iterables of two-character strings)."""
        size = len(vocab)
        heads = collections.defaultdict(list)  # (set, first) -> the tokens after it, in id order
        for g, first, second in sorted({(g, vocab.id(b[0]), vocab.id(b[1]))
                                        for g, pairs in enumerate(bigram_sets) for b in pairs}):
            heads[g, first].append(second)
        index = np.zeros((max(len(bigram_sets), 1), size), np.int32)
        successors = np.full((len(heads) + 1, max(map(len, heads.values()), default=1)), size, np.int32)
        for row, ((g, first), seconds) in enumerate(heads.items(), start=1):
            index[g, first] = row
            successors[row, : len(seconds)] = seconds
        return cls(index, successors)


class Decoder:
    """Batched, constrained sampling from a PoetryModel, compiled once per model."""

    def __init__(self, model):
        self.model = model
        spec = tf.TensorSpec
        # autograph=False: the graph is written with explicit tf.while_loop and
        # tf.cond, and autograph's conversion cache was seen converting the
        # wrong function (Keras' __init__) in long processes.
        self._decode = tf.function(
            self.decode_graph,
            autograph=False,
            input_signature=[
                spec([None, None], tf.bool),  # mask_table (M, V)
                spec([None, None], tf.int32),  # step_masks (B, T)
                spec([None, None], tf.bool),  # rhyme_step (B, T)
                spec([None, None], tf.bool),  # group_members (G, V)
                spec([None, None], tf.bool),  # initial_groups (B, G)
                spec([None], tf.int32),  # lengths (B,)
                spec([None], tf.float32),  # temperature (B,), 0 = greedy
                spec([None], tf.int32),  # top_k (B,), 0 = off
                spec([None], tf.float32),  # top_p (B,), 1 = off
                spec([None], tf.int64),  # keys (B,): row_key of each poem, seeds its noise
                spec([None], tf.int32),  # start (B,): first input, BOS (lyrics streams: a prefix character)
                spec([None, None], tf.int32),  # context_need (B, T)
                spec([None, None], tf.int32),  # pair_tokens (V, K)
                spec([None, None], tf.int32),  # pair_kinds (V, K)
                spec([None, None], tf.bool),  # no_repeat (B, T)
                spec([None, None], tf.int8),  # fixed_counts (B, V)
                spec([None, None], tf.float32),  # pull (B, V): the bonus on each keyword and title character
                spec([None], tf.int32),  # content_start (B,)
                spec([None, None], tf.int32),  # prompt (B, P): the prompt's characters, PAD-padded
                spec([None, None], tf.bool),  # line_end_step (B, T)
                spec([None], tf.float32),  # end_lift (V,)
                spec([None], tf.float32),  # line_end_bonus (B,)
                spec([None, None], tf.int32),  # reuse_index (G, V): row of reuse_successors per (memory, previous token)
                spec([None, None], tf.int32),  # reuse_successors (R, K): characters written after it, V-padded
                spec([None], tf.int32),  # reuse_group (B,): each poem's row of reuse_index
                spec([None], tf.float32),  # reuse_penalty (B,)
            ],
        )

    def decode(self, plan, temperature=1.0, top_k=0, top_p=1.0, keys=0, start=None, keyword_bonus=0.0,
               title_bonus=0.0, line_end_bonus=0.0, reuse=None, reuse_penalty=0.0):
        """Sample the plan's poems; each sampling setting is a scalar or one value per row.

        ``reuse`` is a :class:`ReuseTable` and its group per row (default:
        nothing to avoid), penalised by ``reuse_penalty``.
        """
        rows = len(plan.lengths)
        table, reuse_group = reuse or (ReuseTable.empty(plan.mask_table.shape[1]), np.zeros(rows, np.int32))
        if start is None:
            start = np.full(rows, vocab_lib.BOS, np.int32)
        pull = (plan.keyword_tokens * per_row(keyword_bonus, rows, np.float32)[:, None]
                + plan.title_weights * per_row(title_bonus, rows, np.float32)[:, None])
        tokens, logprobs, ended = self._decode(
            plan.mask_table,
            plan.step_masks,
            plan.rhyme_step,
            plan.group_members,
            plan.initial_groups,
            plan.lengths,
            per_row(temperature, rows, np.float32),
            per_row(top_k, rows, np.int32),
            per_row(top_p, rows, np.float32),
            per_row(keys, rows, np.int64),
            tf.constant(start, tf.int32),
            plan.context_need,
            plan.pair_tokens,
            plan.pair_kinds,
            plan.no_repeat,
            plan.fixed_counts,
            pull,
            plan.content_start,
            plan.prompt_tokens,
            plan.line_end_step,
            plan.end_lift,
            per_row(line_end_bonus, rows, np.float32),
            table.index,
            table.successors,
            np.asarray(reuse_group, np.int32),
            per_row(reuse_penalty, rows, np.float32),
        )
        steps = int(np.max(np.sum(tokens.numpy() != vocab_lib.PAD, axis=1), initial=0))
        return Decoded(tokens.numpy()[:, :steps], logprobs.numpy()[:, :steps], ended.numpy())

    def decode_graph(self, mask_table, step_masks, rhyme_step, group_members, initial_groups, lengths,
                     temperature, top_k, top_p, keys, start, context_need=None, pair_tokens=None, pair_kinds=None,
                     no_repeat=None, fixed_counts=None, pull=None, content_start=None, prompt=None,
                     line_end_step=None, end_lift=None, line_end_bonus=None, reuse_index=None,
                     reuse_successors=None, reuse_group=None, reuse_penalty=None):
        """The decoding loop as graph ops, for ``decode`` and for graphs that embed it (export).

        The pair and repeat arguments default to "no pair and no repeat mask",
        ``pull`` to "no keywords and no title", ``prompt`` to "no prompt",
        ``line_end_step`` to "no line-end pull", ``reuse_index`` to "no
        reuse penalty". A
        prompt-bag model reads ``prompt`` (``model.prompt_context``) at every
        step, from the first one on, as in training.
        """
        batch, max_steps = tf.shape(step_masks)[0], tf.shape(step_masks)[1]
        vocab_size = tf.shape(mask_table)[1]
        if context_need is None:
            context_need = tf.zeros_like(step_masks)
            pair_tokens = tf.fill([vocab_size, 1], vocab_size)
            pair_kinds = tf.zeros([vocab_size, 1], tf.int32)
            no_repeat = tf.zeros_like(rhyme_step)
            fixed_counts = tf.zeros([batch, vocab_size], tf.int8)
        if pull is None:
            pull = tf.zeros([batch, vocab_size], tf.float32)
            content_start = tf.zeros([batch], tf.int32)
        if line_end_step is None:
            line_end_step = tf.zeros_like(rhyme_step)
            end_lift = tf.zeros([vocab_size], tf.float32)
            line_end_bonus = tf.zeros([batch], tf.float32)
        if reuse_index is None:
            reuse_index = tf.zeros([1, vocab_size], tf.int32)
            reuse_successors = tf.fill([1, 1], vocab_size)
            reuse_group = tf.zeros([batch], tf.int32)
            reuse_penalty = tf.zeros([batch], tf.float32)
        members = tf.cast(group_members, tf.float32)  # (G, V)
        char_groups = tf.transpose(group_members)  # (V, G)

        def row_mask(columns, hit):
            """bool (B, V): True at columns[b, k] where hit[b, k]; column V is padding."""
            rows = tf.range(batch)[:, None] + tf.zeros_like(columns)
            index = tf.stack([rows, columns], axis=-1)
            return tf.scatter_nd(index, tf.cast(hit, tf.int32), tf.stack([batch, vocab_size + 1]))[:, :-1] > 0

        context = None if prompt is None else self.model.prompt_context(prompt)

        def body(t, prev, states, done, groups, used, counts, pull, tokens, logprobs):
            logits, states = self.model.step(prev, states, context)
            logits = tf.cast(logits, tf.float32)
            in_content = t >= content_start  # (B,)
            allowed = tf.gather(mask_table, step_masks[:, t])
            # Pairs: the neighbours of prev that would change how prev or this character is heard.
            hit = (tf.gather(pair_kinds, prev) & context_need[:, t][:, None]) > 0  # (B, K)
            allowed &= ~row_mask(tf.gather(pair_tokens, prev), hit)
            # Rhyme: a character of a group still open to this poem, not used before.
            rhyme_ok = (tf.matmul(tf.cast(groups, tf.float32), members) > 0) & ~used
            at_rhyme = rhyme_step[:, t]
            allowed &= tf.where(at_rhyme[:, None], rhyme_ok, True)
            # No repeats: a character used MAX_USES times already is out, unless
            # that would leave nothing (only where the plan cannot guarantee it).
            limited = allowed & ~(no_repeat[:, t][:, None] & (counts >= poem_request.MAX_USES))
            allowed = tf.where(tf.reduce_any(limited, axis=1, keepdims=True), limited, allowed)

            # Keywords and title characters not yet written: a bonus on their
            # logits (the poem's log-probabilities stay the model's own); where
            # the first line ends, characters that end lines are pulled up.
            pulled = logits + tf.where(in_content[:, None], pull, 0.0)
            at_end = line_end_step[:, t]  # true for at most one step of a poem: skip the (B, V) add elsewhere
            pulled = tf.cond(tf.reduce_any(at_end),
                             lambda: pulled + tf.where(at_end[:, None], line_end_bonus[:, None] * end_lift[None, :], 0.0),
                             lambda: pulled)
            # Character pairs the ask's earlier poems wrote after prev: a penalty, not a mask.
            def penalise_reuse():
                successors = tf.gather(reuse_successors, tf.gather_nd(reuse_index, tf.stack([reuse_group, prev], -1)))
                reused = row_mask(successors, successors < vocab_size)
                return pulled - tf.where(reused, reuse_penalty[:, None], 0.0)

            pulled = tf.cond(tf.reduce_any(reuse_penalty > 0), penalise_reuse, lambda: pulled)
            filtered = filter_logits(pulled, allowed, temperature, top_k, top_p)
            # Gumbel-max: argmax(logits + Gumbel noise) is an exact categorical
            # sample, and greedy decoding is the same argmax without the noise.
            uniform = uniform_noise(keys, t, vocab_size)
            noise = tf.where(temperature[:, None] > 0, -tf.math.log(-tf.math.log(uniform)), 0.0)
            token = tf.argmax(filtered + noise, axis=-1, output_type=tf.int32)
            token = tf.where(done, vocab_lib.PAD, token)

            rhymed = at_rhyme & ~done
            groups = tf.where(rhymed[:, None], groups & tf.gather(char_groups, token), groups)
            chosen = tf.one_hot(token, vocab_size, on_value=True, off_value=False)
            used |= chosen & rhymed[:, None]
            counts += tf.cast(chosen & (no_repeat[:, t] & ~done)[:, None], tf.int8)
            pull = tf.where(chosen & in_content[:, None], 0.0, pull)
            logprob = tf.gather(logits, token, batch_dims=1) - tf.reduce_logsumexp(logits, axis=-1)
            column = tf.one_hot(t, max_steps)[None, :]  # static shapes, so XLA can compile the loop
            tokens += tf.cast(column, tf.int32) * token[:, None]
            logprobs += column * tf.where(done, 0.0, logprob)[:, None]
            done |= (token == vocab_lib.EOS) | (t + 1 >= lengths)
            return t + 1, token, states, done, groups, used, counts, pull, tokens, logprobs

        def cond(t, prev, states, done, *_):
            return (t < max_steps) & ~tf.reduce_all(done)

        loop = tf.while_loop(
            cond,
            body,
            (
                tf.constant(0),
                start,
                self.model.initial_states(batch),
                lengths <= 0,
                initial_groups,
                tf.zeros([batch, vocab_size], tf.bool),
                fixed_counts,
                pull,
                tf.zeros([batch, max_steps], tf.int32),  # PAD = 0 wherever nothing was written
                tf.zeros([batch, max_steps], tf.float32),
            ),
        )
        tokens, logprobs = loop[8], loop[9]
        return tokens, logprobs, tf.reduce_any(tokens == vocab_lib.EOS, axis=1)


@dataclasses.dataclass
class Poem:
    """One generated poem, ready to print or to serialise."""

    request: object  # the poem_request.PoemRequest it answers
    title: str
    content: str
    logprobs: list  # log p of each content token (EOS included) under the model
    ended: bool  # reached EOS (a free poem may be cut at max_len instead)

    @property
    def mean_logprob(self):
        return float(np.mean(self.logprobs)) if self.logprobs else float("-inf")


def sampling_rows(requests, temperature, top_k, top_p, seed, best_of, indices):
    """Per-row sampling settings of ``requests`` expanded ``best_of`` times each.

    Every setting is a scalar or one value per request. Returns the request
    of each row and a dict of per-row arrays for ``Decoder.decode``. A row's
    key is ``row_key(seed, index, copy)``: ``index`` is the poem's number in
    its caller's ask (by default its place in ``requests``).
    """
    n = len(requests)
    copies = per_row(best_of, n, np.int64)
    seeds = per_row(seed, n, np.int64)
    index = np.arange(n) if indices is None else per_row(indices, n, np.int64)
    if np.any(copies < 1) or np.any(copies > MAX_COPIES):
        raise PoetryError(f"best_of must be in [1, {MAX_COPIES}], got {copies.min()}..{copies.max()}")
    if np.any(seeds < 0) or np.any(seeds >= MAX_SEED) or np.any(index < 0) or np.any(index >= MAX_INDEX):
        raise PoetryError(f"seeds must be in [0, {MAX_SEED}) and at most {MAX_INDEX} poems in one ask")
    owner = np.repeat(np.arange(n), copies)
    copy = np.concatenate([np.arange(c) for c in copies])
    rows = {
        # Beyond float32's range a temperature is as good as infinite: every allowed character equally likely.
        "temperature": per_row(np.minimum(np.asarray(temperature, np.float64), 1e30), n, np.float32)[owner],
        "top_k": per_row(top_k, n, np.int32)[owner],
        "top_p": per_row(top_p, n, np.float32)[owner],
        "keys": row_key(seeds[owner], index[owner], copy),
    }
    return owner, rows


def rankings_for(n, ranking, novelty_weight, rhyme_bonus):
    """One Ranking per request: ``ranking`` for all, else from the two weights (scalars or one per request)."""
    if ranking is not None:
        return [ranking] * n
    return [Ranking(novelty_weight=float(w), rhyme_bonus=float(b))
            for w, b in zip(per_row(novelty_weight, n, np.float64), per_row(rhyme_bonus, n, np.float64))]


def generate(model, vocab, requests, temperature=1.0, top_k=0, top_p=1.0, seed=0, best_of=1,
             condition="none", decoder=None, indices=None, novelty_weight=0.0, rhyme_bonus=0.0, ranking=None,
             groups=None, memory=None, keyword_bonus=0.0, title_bonus=0.0, line_end_bonus=0.0, reuse_penalty=0.0,
             prompt_bag=False):
    """Poems for ``requests``; with ``best_of`` > 1, the best per request.

    Each request is decoded ``best_of`` times in the same batch (drafts) and
    the candidate with the highest ``ranking`` score is kept; without
    ``ranking`` (which can carry an n-gram second opinion) it is
    ``Ranking(novelty_weight=..., rhyme_bonus=...)``, the two weights that
    ``options.SamplingOptions`` carries. Sampling settings are
    scalars or one per request (coalesced asks keep their own); see
    ``sampling_rows`` for how ``seed`` and ``indices`` key each poem's random
    numbers. ``keyword_bonus`` and ``title_bonus`` (scalars or per request)
    are added to the logits of each request's keywords and of its title's
    other characters until the poem has written them; ``line_end_bonus``
    times ``line_ends`` lift where the first line of a regular poem ends.
    ``reuse_penalty`` is subtracted from the logit of a character that would
    repeat a bigram of an earlier round's poem of the same group
    (``memory``); requests with a penalty are decoded round by round
    (``round_start``), the others in the first call.
    """
    n = len(requests)
    index = np.arange(n) if indices is None else per_row(indices, n, np.int64)
    groups = [0] * n if groups is None else list(groups)
    memory = AskMemory() if memory is None else memory
    settings = {
        "temperature": per_row(temperature, n, np.float64), "top_k": per_row(top_k, n, np.int64),
        "top_p": per_row(top_p, n, np.float64), "seed": per_row(seed, n, np.int64),
        "best_of": per_row(best_of, n, np.int64), "novelty_weight": per_row(novelty_weight, n, np.float64),
        "rhyme_bonus": per_row(rhyme_bonus, n, np.float64), "keyword_bonus": per_row(keyword_bonus, n, np.float32),
        "title_bonus": per_row(title_bonus, n, np.float32), "line_end_bonus": per_row(line_end_bonus, n, np.float32),
        "reuse_penalty": per_row(reuse_penalty, n, np.float32),
    }
    rounds = np.array([round_start(i) if p > 0 else 0 for i, p in zip(index, settings["reuse_penalty"])], np.int64)
    poems = [None] * n
    for start in np.unique(rounds):
        picked = np.flatnonzero(rounds == start)
        out = _generate_round(model, vocab, [requests[k] for k in picked],
                              {name: values[picked] for name, values in settings.items()}, index[picked],
                              [groups[k] for k in picked], memory, condition, decoder, ranking, prompt_bag)
        for k, poem in zip(picked, out):
            poems[k] = poem
    return poems


def _generate_round(model, vocab, requests, settings, index, groups, memory, condition, decoder, ranking, prompt_bag):
    """``generate``'s decode of one round: its requests' drafts in one batch, the best of each kept."""
    owner, rows = sampling_rows(requests, settings["temperature"], settings["top_k"], settings["top_p"],
                                settings["seed"], settings["best_of"], index)
    for name in ("keyword_bonus", "title_bonus", "line_end_bonus", "reuse_penalty"):
        rows[name] = settings[name][owner]
    reuse = None
    if np.any(settings["reuse_penalty"] > 0):
        sets = [(group, round_start(i)) for group, i in zip(groups, index)]
        number = {key: k for k, key in enumerate(dict.fromkeys(sets))}  # one table row per (ask, round)
        table = ReuseTable.build(vocab, [memory.bigrams(group, before=start, window=REUSE_WINDOW)
                                         for group, start in number])
        reuse = (table, np.array([number[sets[i]] for i in owner], np.int32))
    expanded = [requests[i] for i in owner]
    plan = constraints.plan(expanded, vocab, condition=condition, prompt_bag=prompt_bag)
    decoded = (decoder or Decoder(model)).decode(plan, reuse=reuse, **rows)
    candidates = []
    for b, request in enumerate(expanded):
        steps, start = decoded.steps(b), int(plan.content_start[b])
        content = vocab.decode(decoded.tokens[b][start:])
        candidates.append(Poem(request, request.title, content, decoded.logprobs[b, start:steps].tolist(), bool(decoded.ended[b])))
    rankings = rankings_for(len(requests), ranking, settings["novelty_weight"], settings["rhyme_bonus"])
    return best_per_request(candidates, owner, len(requests), rankings, groups, memory, index)


def continue_streams(model, vocab, prefixes, length, temperature=1.0, top_k=0, top_p=1.0, seed=0, best_of=1,
                     decoder=None, indices=None, novelty_weight=0.0, rhyme_bonus=0.0, groups=None, memory=None):
    """Lyrics streams, as d2l's ``predict_rnn``: feed each prefix, then add ``length`` characters.

    A stream model never saw BOS, so the first prefix character is the first
    input, from zero states (an empty prefix starts from a space, the line
    break of the joined text); the rest of the prefix is forced, then exactly
    ``length`` characters are sampled (EOS is never allowed: a stream has no
    end). Returns one ``Poem`` per prefix (best of ``best_of``): its content
    is the prefix followed by the new characters, its logprobs those of the
    new characters only. Drafts are ranked as ``generate`` ranks them.
    """
    if length < 1:
        raise PoetryError(f"--length must be at least 1, got {length}")
    for prefix in prefixes:
        missing = [c for c in prefix or " " if c not in vocab]
        if missing:
            raise PoetryError(f"prefix character {missing[0]!r} is not in the model's vocabulary")
    owner, rows = sampling_rows(prefixes, temperature, top_k, top_p, seed, best_of, indices)
    expanded = [prefixes[i] for i in owner]
    forced = [max(len(p) - 1, 0) for p in expanded]
    requests = [poem_request.PoemRequest(begin=p[1:], max_len=f + length, stop_at_eos=False) for p, f in zip(expanded, forced)]
    plan = constraints.plan(requests, vocab)
    start = np.array([vocab.id(p[:1] or " ") for p in expanded], np.int32)
    decoded = (decoder or Decoder(model)).decode(plan, start=start, **rows)
    candidates = [
        Poem(
            poem_request.PoemRequest(begin=p, max_len=len(p) + length, stop_at_eos=False),
            "",
            p + vocab.decode(decoded.tokens[b, f : f + length]),
            decoded.logprobs[b, f : f + length].tolist(),
            False,
        )
        for b, (p, f) in enumerate(zip(expanded, forced))
    ]
    rankings = rankings_for(len(prefixes), None, novelty_weight, rhyme_bonus)
    return best_per_request(candidates, owner, len(prefixes), rankings, groups, memory, indices)
