"""The in-graph batched sampler: one tf.function writes a whole batch of poems.

Every kind of poem, free or constrained, is decoded by the same loop: at each
step the model advances one character for the whole batch (``model.step``),
the step's allowed-token mask is looked up, the dynamic rhyme mask is ANDed
in where a rhyme falls, and a token is sampled (greedy, temperature, top-k,
top-p) from the masked logits. A ``constraints.DecodePlan`` says what is
allowed where; the decoder knows nothing about forms. It runs in a
``tf.while_loop`` with no Python per character, and stops when every poem has
emitted EOS or reached its length.

Sampling uses stateless random ops seeded by ``(seed, step)``, so the same
seed gives the same poems.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from poetry_rnn import vocab as vocab_lib

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


def filter_logits(logits, allowed, temperature, top_k, top_p):
    """Masked, temperature-scaled logits with top-k and top-p applied (-inf = excluded)."""
    scaled = tf.where(allowed, logits / tf.maximum(temperature, 1e-6), NEG_INF)

    def keep_top_k():
        k = tf.minimum(top_k, tf.shape(scaled)[-1])
        kth = tf.math.top_k(scaled, k).values[:, -1:]
        return tf.where(scaled < kth, NEG_INF, scaled)

    scaled = tf.cond(top_k > 0, keep_top_k, lambda: scaled)

    def keep_top_p():
        ordered = tf.sort(scaled, direction="DESCENDING")
        before = tf.math.cumsum(tf.nn.softmax(ordered), axis=-1, exclusive=True)
        # The smallest logit still inside the nucleus; the top token always is.
        threshold = tf.reduce_min(tf.where(before < top_p, ordered, tf.float32.max), axis=-1, keepdims=True)
        return tf.where(scaled < threshold, NEG_INF, scaled)

    return tf.cond(top_p < 1.0, keep_top_p, lambda: scaled)


class Decoder:
    """Batched, constrained sampling from a PoetryModel, compiled once per model."""

    def __init__(self, model):
        self.model = model
        spec = tf.TensorSpec
        self._decode = tf.function(
            self._decode_graph,
            input_signature=[
                spec([None, None], tf.bool),  # mask_table (M, V)
                spec([None, None], tf.int32),  # step_masks (B, T)
                spec([None, None], tf.bool),  # rhyme_step (B, T)
                spec([None, None], tf.bool),  # group_members (G, V)
                spec([None, None], tf.bool),  # initial_groups (B, G)
                spec([None], tf.int32),  # lengths (B,)
                spec([], tf.float32),  # temperature (0 = greedy)
                spec([], tf.int32),  # top_k (0 = off)
                spec([], tf.float32),  # top_p (1 = off)
                spec([], tf.int64),  # seed
            ],
        )

    def decode(self, plan, temperature=1.0, top_k=0, top_p=1.0, seed=0):
        tokens, logprobs, ended = self._decode(
            plan.mask_table,
            plan.step_masks,
            plan.rhyme_step,
            plan.group_members,
            plan.initial_groups,
            plan.lengths,
            tf.constant(temperature, tf.float32),
            tf.constant(top_k, tf.int32),
            tf.constant(top_p, tf.float32),
            tf.constant(seed, tf.int64),
        )
        return Decoded(tokens.numpy(), logprobs.numpy(), ended.numpy())

    def _decode_graph(self, mask_table, step_masks, rhyme_step, group_members, initial_groups, lengths,
                      temperature, top_k, top_p, seed):
        batch, max_steps = tf.shape(step_masks)[0], tf.shape(step_masks)[1]
        vocab_size = tf.shape(mask_table)[1]
        members = tf.cast(group_members, tf.float32)  # (G, V)
        char_groups = tf.transpose(group_members)  # (V, G)

        def body(t, prev, states, done, groups, used, tokens, logprobs):
            logits, states = self.model.step(prev, states)
            logits = tf.cast(logits, tf.float32)
            allowed = tf.gather(mask_table, step_masks[:, t])
            # Rhyme: a character of a group still open to this poem, not used before.
            rhyme_ok = (tf.matmul(tf.cast(groups, tf.float32), members) > 0) & ~used
            at_rhyme = rhyme_step[:, t]
            allowed &= tf.where(at_rhyme[:, None], rhyme_ok, True)

            filtered = filter_logits(logits, allowed, temperature, top_k, top_p)
            step_seed = tf.stack([seed, tf.cast(t, tf.int64)])
            sampled = tf.random.stateless_categorical(filtered, 1, step_seed, dtype=tf.int32)[:, 0]
            greedy = tf.argmax(filtered, axis=-1, output_type=tf.int32)
            token = tf.where(temperature > 0, sampled, greedy)
            token = tf.where(done, vocab_lib.PAD, token)

            rhymed = at_rhyme & ~done
            groups = tf.where(rhymed[:, None], groups & tf.gather(char_groups, token), groups)
            used |= tf.one_hot(token, vocab_size, on_value=True, off_value=False) & rhymed[:, None]
            logprob = tf.gather(tf.nn.log_softmax(logits), token, batch_dims=1)
            logprobs = logprobs.write(t, tf.where(done, 0.0, logprob))
            tokens = tokens.write(t, token)
            done |= (token == vocab_lib.EOS) | (t + 1 >= lengths)
            return t + 1, token, states, done, groups, used, tokens, logprobs

        def cond(t, prev, states, done, *_):
            return (t < max_steps) & ~tf.reduce_all(done)

        loop = tf.while_loop(
            cond,
            body,
            (
                tf.constant(0),
                tf.fill([batch], vocab_lib.BOS),
                self.model.initial_states(batch),
                lengths <= 0,
                initial_groups,
                tf.zeros([batch, vocab_size], tf.bool),
                tf.TensorArray(tf.int32, size=max_steps, element_shape=[None]),
                tf.TensorArray(tf.float32, size=max_steps, element_shape=[None]),
            ),
        )
        steps, tokens, logprobs = loop[0], loop[6], loop[7]
        tokens = tf.transpose(tokens.gather(tf.range(steps)))
        logprobs = tf.transpose(logprobs.gather(tf.range(steps)))
        ended = tf.reduce_any(tokens == vocab_lib.EOS, axis=1)
        return tokens, logprobs, ended


@dataclasses.dataclass
class Poem:
    """One generated poem, ready to print or to serialise."""

    request: object  # the constraints.PoemRequest it answers
    title: str
    content: str
    logprobs: list  # log p of each content token (EOS included) under the model
    ended: bool  # reached EOS (a free poem may be cut at max_len instead)

    @property
    def mean_logprob(self):
        return float(np.mean(self.logprobs)) if self.logprobs else float("-inf")


def generate(model, vocab, requests, temperature=1.0, top_k=0, top_p=1.0, seed=0, best_of=1,
             title_conditioned=False, decoder=None):
    """Poems for ``requests`` in one batched call; with ``best_of`` > 1, the best per request.

    Each request is decoded ``best_of`` times in the same batch and the
    candidate with the highest mean log-probability per character is kept.
    """
    from poetry_rnn import constraints

    expanded = [r for r in requests for _ in range(best_of)]
    plan = constraints.plan(expanded, vocab, title_conditioned=title_conditioned)
    decoded = (decoder or Decoder(model)).decode(plan, temperature, top_k, top_p, seed)
    candidates = []
    for b, request in enumerate(expanded):
        steps, start = decoded.steps(b), int(plan.content_start[b])
        tokens = decoded.tokens[b]
        title = vocab.decode(tokens[: max(start - 1, 0)])
        candidates.append(Poem(request, title, vocab.decode(tokens[start:]), decoded.logprobs[b, start:steps].tolist(), bool(decoded.ended[b])))
    return [
        max(candidates[i * best_of : (i + 1) * best_of], key=lambda p: p.mean_logprob) for i in range(len(requests))
    ]
