"""The in-graph batched sampler: one tf.function writes a whole batch of poems.

Every kind of poem, free or constrained, is decoded by the same loop: at each
step the model advances one character for the whole batch (``model.step``),
the processors (``processors.PROCESSORS``: masks, pulls, sampling) turn its
logits into the scores of this step, and the argmax is the token. A
``constraints.DecodePlan`` says what is allowed where; the sampler knows
nothing about forms, and nothing about any one processor. It runs in a
``tf.while_loop`` with no Python per character, and stops when every poem has
emitted EOS or reached its length. A prompt-bag model reads the plan's
prompt (``model.prompt_context``) at every step, from the first one on, as
in training.

The same seed gives the same poems: the noise is keyed by each poem
(``noise.row_key``), and only ops XLA can compile are used.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from poetry_rnn.generation import processors as processors_lib
from poetry_rnn.model import vocab as vocab_lib

# What the loop itself reads, besides the processors' arrays.
LOOP_SIGNATURE = {
    "lengths": tf.TensorSpec([None], tf.int32),  # (B,): steps of each poem, its EOS included
    "content_start": tf.TensorSpec([None], tf.int32),  # (B,): first step of the content
    "start": tf.TensorSpec([None], tf.int32),  # (B,): first input, BOS (lyrics streams: a prefix character)
    "prompt": tf.TensorSpec([None, None], tf.int32),  # (B, P): the prompt's characters, PAD-padded
}


@dataclasses.dataclass
class Decoded:
    """Generated tokens, for B poems and the T steps that were run."""

    tokens: np.ndarray  # int32 (B, T): PAD after a poem ended
    logprobs: np.ndarray  # float32 (B, T): log p(token) under the unmasked model, 0 after the end
    forced: np.ndarray  # float32 (B,): nats the masks took from the model over the content (see decode_graph)
    ended: np.ndarray  # bool (B,): emitted EOS (False = cut at its length)

    def length(self, b):
        """Number of tokens poem ``b`` produced, its EOS included."""
        return int(np.sum(self.tokens[b] != vocab_lib.PAD, axis=-1))


class Decoder:
    """Batched, constrained sampling from a PoetryModel, compiled once per model and tuple of processors."""

    def __init__(self, model, processors=processors_lib.PROCESSORS):
        self.model, self.processors = model, tuple(processors)
        # autograph=False: the graph is written with explicit tf.while_loop and
        # tf.cond, and autograph's conversion cache was seen converting the
        # wrong function (Keras' __init__) in long processes.
        self._decode = tf.function(self.decode_graph, autograph=False,
                                   input_signature=[LOOP_SIGNATURE, tuple(p.SIGNATURE for p in self.processors)])

    @property
    def config(self):
        """The model's ModelConfig: how it reads a prompt (the plan follows it)."""
        return self.model.config

    def decode(self, plan, start=None, **settings):
        """Sample the plan's poems; ``settings`` are the processors' per-row settings (scalars or one per row).

        A setting not given takes its processor's neutral value (off).
        ``keys`` seed each row's noise; ``start`` is each row's first input
        (default BOS).
        """
        rows = len(plan.lengths)
        loop = {"lengths": plan.lengths, "content_start": plan.content_start, "prompt": plan.prompt_tokens,
                "start": np.full(rows, vocab_lib.BOS, np.int32) if start is None else np.asarray(start, np.int32)}
        arrays = tuple(p.from_plan(plan, settings) for p in self.processors)
        tokens, logprobs, forced, ended = (x.numpy() for x in self._decode(loop, arrays))
        steps = int(np.max(np.sum(tokens != vocab_lib.PAD, axis=1), initial=0))
        return Decoded(tokens[:, :steps], logprobs[:, :steps], forced, ended)

    def decode_graph(self, loop, arrays):
        """The decoding loop as graph ops, for ``decode`` and for graphs that embed it (the SavedModel).

        ``loop`` holds LOOP_SIGNATURE's tensors (``prompt`` may be left out:
        no prompt), ``arrays`` each processor's, in order. Besides the
        tokens and their log-probabilities it sums, per poem, what the masks
        (``IS_MASK`` processors) took from the model: at each content step,
        minus the log of the probability the model gave the characters they
        left. A rule the model was about to follow costs nothing; a rhyme
        forced onto a line that was not heading for it costs nats.
        """
        processors = [cls(**a) for cls, a in zip(self.processors, arrays)]
        lengths, content_start, max_steps = loop["lengths"], loop["content_start"], tf.reduce_max(loop["lengths"])
        batch = tf.shape(lengths)[0]
        prompt = loop.get("prompt")
        context = None if prompt is None else self.model.prompt_context(prompt)
        last_mask = max((i for i, p in enumerate(processors) if p.IS_MASK), default=-1)

        def body(t, prev, states, done, tokens, logprobs, forced, kept):
            logits, states = self.model.step(prev, states, context)
            logits = tf.cast(logits, tf.float32)
            step = processors_lib.Step(t, prev, t >= content_start, done, logits)
            scores, total = logits, tf.reduce_logsumexp(logits, axis=-1)
            for i, (processor, state) in enumerate(zip(processors, kept)):
                scores = processor.apply(scores, state, step)
                if i == last_mask:
                    left = tf.reduce_logsumexp(scores, axis=-1) - total
                    forced -= tf.where(done | ~step.in_content, 0.0, left)
            token = tf.where(done, vocab_lib.PAD, tf.argmax(scores, axis=-1, output_type=tf.int32))
            step = step._replace(token=token)
            kept = tuple(processor.update(state, step) for processor, state in zip(processors, kept))
            logprob = tf.gather(logits, token, batch_dims=1) - total
            column = tf.one_hot(t, max_steps)[None, :]  # static shapes, so XLA can compile the loop
            tokens += tf.cast(column, tf.int32) * token[:, None]
            logprobs += column * tf.where(done, 0.0, logprob)[:, None]
            done |= (token == vocab_lib.EOS) | (t + 1 >= lengths)
            return t + 1, token, states, done, tokens, logprobs, forced, kept

        def cond(t, prev, states, done, *_):
            return (t < max_steps) & ~tf.reduce_all(done)

        start = (tf.constant(0), loop["start"], self.model.initial_states(batch), lengths <= 0,
                 tf.zeros([batch, max_steps], tf.int32),  # PAD = 0 wherever nothing was written
                 tf.zeros([batch, max_steps], tf.float32), tf.zeros([batch], tf.float32),
                 tuple(p.initial_state(batch) for p in processors))
        tokens, logprobs, forced = tf.while_loop(cond, body, start)[4:7]
        return tokens, logprobs, forced, tf.reduce_any(tokens == vocab_lib.EOS, axis=1)
