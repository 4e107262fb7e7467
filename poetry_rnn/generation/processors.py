"""Every constraint or pull on the logits, one class each, applied in turn at each step of the sampler.

A processor is the whole of one knob, in the spirit of the logits processors
of Hugging Face's ``generation`` package, with the state our constraints
need:

* ``SIGNATURE``: its arrays' names, dtypes and shapes (the sampler's
  ``tf.function`` signature is the processors' signatures in a tuple);
* ``from_plan(plan, settings)``: those arrays, computed once per ask on the
  host from the ``constraints.DecodePlan`` and the per-row sampling settings
  (``SETTINGS`` names the ``options.SamplingOptions`` fields it reads, with
  their dtypes; a setting not given takes the field's neutral value, the one
  that turns it off);
* ``initial_state(batch)``, ``apply(logits, state, step)`` and
  ``update(state, step)``: in the graph, what it remembers while decoding,
  how it changes the logits (a mask sets -inf, a pull adds a bonus), and
  what it learns from the chosen token;
* ``IS_MASK``: True for a rule of the poem (form, rhyme, shape), whose
  masks come first; what they take from the model's own distribution is
  how hard a draft was forced (``sampler.Decoded.forced``, which the
  ranking's ``forcing_weight`` reads).

The sampler (``sampler.Decoder``) runs the model step, then ``PROCESSORS`` in
order, then takes the argmax. Masks come first, so the allowed set a later
mask sees (``logits > -inf``) is the earlier ones' intersection; pulls come
next, then temperature, top-k, top-p, typical sampling, the over-use pull
inside what they keep, and the Gumbel noise that makes the argmax a
sample. Adding a knob means writing its processor, adding it here, and
giving it its option in ``options.SamplingOptions``.
"""

import collections
import dataclasses
import typing

import numpy as np
import tensorflow as tf

from poetry_rnn.generation import noise, overuse
from poetry_rnn.model import vocab as vocab_lib
from poetry_rnn.options import SamplingOptions
from poetry_rnn.verse import poem_request

NEG_INF = float("-inf")


class Step(typing.NamedTuple):
    """Where the sampler stands: what ``apply`` and ``update`` may read besides their own arrays."""

    t: tf.Tensor  # int32 (): the step
    prev: tf.Tensor  # int32 (B,): the previous token
    in_content: tf.Tensor  # bool (B,): the poem's content has begun (past a prompt read as a prefix)
    done: tf.Tensor  # bool (B,): the poem ended before this step
    model_logits: tf.Tensor = None  # float32 (B, V): the model's own logits, before any processor
    token: tf.Tensor = None  # int32 (B,): the token chosen at this step (``update`` only; PAD where done)


def per_row(value, rows, dtype):
    """``value`` (a scalar or one per row) as a numpy array of ``rows`` values."""
    return np.broadcast_to(np.asarray(value, dtype), (rows,)).copy()


def row_mask(columns, hit, vocab_size):
    """bool (B, V): True at columns[b, k] where hit[b, k]; column V is padding."""
    batch = tf.shape(columns)[0]
    rows = tf.range(batch)[:, None] + tf.zeros_like(columns)
    index = tf.stack([rows, columns], axis=-1)
    return tf.scatter_nd(index, tf.cast(hit, tf.int32), tf.stack([batch, vocab_size + 1]))[:, :-1] > 0


def mask(logits, allowed):
    """-inf wherever ``allowed`` is False."""
    return tf.where(allowed, logits, NEG_INF)


def end_column(logits):
    """bool (1, V): True at EOS only, for the processors that decide where a poem may end."""
    return tf.one_hot(vocab_lib.EOS, tf.shape(logits)[1], on_value=True, off_value=False)[None, :]


def can_go_on(logits, is_end):
    """bool (B,): a row has something besides the end still allowed, so masking the end leaves it a choice."""
    return tf.reduce_any(~is_end & (logits > NEG_INF), axis=-1)


def chars_in_line(said, han, step):
    """int32 (B,): the Han characters of the content since the last mark, ``said`` before ``step.token``."""
    return tf.where(tf.gather(han, step.token) & step.in_content, said + 1, 0)


def spec(shape, dtype):
    return tf.TensorSpec(shape, dtype)


class LogitsProcessor:
    """One constraint or pull; see the module docstring. Subclasses set SIGNATURE and SETTINGS."""

    SIGNATURE = {}  # array name -> TensorSpec
    SETTINGS = {}  # SamplingOptions field it reads per row -> numpy dtype
    # A mask: a rule of the poem, not a taste. What the masks take from the model's own
    # distribution is how hard the rules forced a draft (``Decoded.forced``).
    IS_MASK = False

    def __init__(self, **arrays):
        if set(arrays) != set(self.SIGNATURE):
            raise TypeError(f"{type(self).__name__} takes {sorted(self.SIGNATURE)}, got {sorted(arrays)}")
        for name, value in arrays.items():
            setattr(self, name, value)

    @classmethod
    def setting(cls, settings, name, rows):
        """Per-row values of setting ``name`` (its neutral value where not given)."""
        return per_row(settings.get(name, SamplingOptions.neutral(name)), rows, cls.SETTINGS[name])

    @classmethod
    def from_plan(cls, plan, settings):
        """By default a processor's arrays are its settings, one value per row (top-k, top-p, min-p)."""
        return {name: cls.setting(settings, name, len(plan.lengths)) for name in cls.SETTINGS}

    def initial_state(self, batch):
        return ()

    def apply(self, logits, state, step):
        raise NotImplementedError

    def update(self, state, step):
        return state


# --------------------------------------------------------------------------
# Masks: what may stand at a step


class Form(LogitsProcessor):
    """Shape and fixed characters: each step's allowed set, one row of a table of distinct rows.

    Covers the form's lines and punctuation, begin, acrostic and template
    characters, tones of free positions, and the end of the poem.
    ``force`` is the in-graph counterpart of the plan's fixed characters,
    for graphs that take begin characters at run time (the SavedModel).
    """

    IS_MASK = True

    SIGNATURE = {"mask_table": spec([None, None], tf.bool),  # (M, V)
                 "step_masks": spec([None, None], tf.int32)}  # (B, T): row of mask_table per step

    @classmethod
    def from_plan(cls, plan, settings):
        return {"mask_table": plan.mask_table, "step_masks": plan.step_masks}

    @staticmethod
    def force(mask_table, step_masks, poem, at, ids):
        """(mask_table, step_masks) with token ``ids[i]`` forced at step ``at[i]`` of poem ``poem[i]``."""
        one_hot = tf.one_hot(ids, tf.shape(mask_table)[1], on_value=True, off_value=False)
        rows = tf.shape(mask_table)[0] + tf.range(tf.size(ids))
        return (tf.concat([mask_table, one_hot], 0),
                tf.tensor_scatter_nd_update(step_masks, tf.stack([poem, at], axis=1), rows))

    def apply(self, logits, state, step):
        return mask(logits, tf.gather(self.mask_table, self.step_masks[:, step.t]))


class HeardPairs(LogitsProcessor):
    """Neighbours that would change how a character is heard (中华新韵: 一 and 不 sandhi, erhua).

    After the previous token, the tokens that would change its heard tone or
    rhyme, or this one's, are out where the plan enforces either.
    """

    IS_MASK = True

    SIGNATURE = {"context_need": spec([None, None], tf.int32),  # (B, T): pair kinds to avoid after prev
                 "pair_tokens": spec([None, None], tf.int32),  # (V, K)
                 "pair_kinds": spec([None, None], tf.int32)}  # (V, K)

    @classmethod
    def from_plan(cls, plan, settings):
        return {"context_need": plan.context_need, "pair_tokens": plan.pair_tokens, "pair_kinds": plan.pair_kinds}

    def apply(self, logits, state, step):
        hit = (tf.gather(self.pair_kinds, step.prev) & self.context_need[:, step.t][:, None]) > 0  # (B, K)
        return mask(logits, ~row_mask(tf.gather(self.pair_tokens, step.prev), hit, tf.shape(logits)[1]))


class Rhyme(LogitsProcessor):
    """At a rhyme step: a character of a group still open to the step's rhyme set, not used at a rhyme before
    nor at the end of an earlier line (a reader hears 飞 ending the first line and the last as one rhyme twice).

    A regular poem has one rhyme set; a ci may change rhyme (菩萨蛮: AABBCCDD),
    so the groups still open are kept per set.
    """

    IS_MASK = True

    SIGNATURE = {"rhyme_set": spec([None, None], tf.int32),  # (B, T): the step's rhyme set, 0 = not a rhyme step
                 "rhyme_watch": spec([None, None], tf.bool),  # (B, T): a line end a later rhyme may not repeat
                 "group_members": spec([None, None], tf.bool),  # (G, V)
                 "initial_groups": spec([None, None, None], tf.bool)}  # (B, S, G)

    @classmethod
    def from_plan(cls, plan, settings):
        return {"rhyme_set": plan.rhyme_set, "rhyme_watch": plan.rhyme_watch, "group_members": plan.group_members,
                "initial_groups": plan.initial_groups}

    def __init__(self, **arrays):
        super().__init__(**arrays)
        # Built once, outside the decoding loop.
        self.members = tf.cast(self.group_members, tf.float32)  # (G, V)
        self.char_groups = tf.transpose(self.group_members)  # (V, G)

    def initial_state(self, batch):
        vocab_size = tf.shape(self.group_members)[1]
        return self.initial_groups, tf.zeros([batch, vocab_size], tf.bool)  # groups open, characters used

    def apply(self, logits, state, step):
        groups, used = state
        rhyme_set = self.rhyme_set[:, step.t]
        open_groups = tf.gather(groups, tf.maximum(rhyme_set - 1, 0), batch_dims=1)  # (B, G): the step's set's
        rhyme_ok = (tf.matmul(tf.cast(open_groups, tf.float32), self.members) > 0) & ~used
        return mask(logits, tf.where((rhyme_set > 0)[:, None], rhyme_ok, True))

    def update(self, state, step):
        groups, used = state
        rhyme_set = tf.where(step.done, 0, self.rhyme_set[:, step.t])
        in_set = tf.one_hot(rhyme_set - 1, tf.shape(groups)[1], on_value=True, off_value=False)  # (B, S); none at 0
        narrowed = groups & tf.gather(self.char_groups, step.token)[:, None, :]
        groups = tf.where(in_set[:, :, None], narrowed, groups)
        chosen = tf.one_hot(step.token, tf.shape(used)[1], on_value=True, off_value=False)
        watched = (rhyme_set > 0) | (self.rhyme_watch[:, step.t] & ~step.done)
        return groups, used | (chosen & watched[:, None])


class NoRepeat(LogitsProcessor):
    """Shaped poems (a form, template or ci): no character more than MAX_USES times, unless that would leave nothing.

    The plan guarantees a choice wherever it can (``repeat_guaranteed``); it
    steps aside only where the vocabulary is too small. Runs after the other
    masks, whose intersection is the allowed set it sees.
    """

    IS_MASK = True

    SIGNATURE = {"no_repeat": spec([None, None], tf.bool),  # (B, T): steps under the limit
                 "fixed_counts": spec([None, None], tf.int8)}  # (B, V): uses by fixed characters

    @classmethod
    def from_plan(cls, plan, settings):
        return {"no_repeat": plan.no_repeat, "fixed_counts": plan.fixed_counts}

    @staticmethod
    def force(no_repeat, fixed_counts, poem, at, ids):
        """(no_repeat, fixed_counts) with ``ids`` forced at (poem, at), as the plan counts fixed characters."""
        where = tf.stack([poem, at], axis=1)
        return (tf.tensor_scatter_nd_update(no_repeat, where, tf.zeros_like(ids, tf.bool)),
                tf.tensor_scatter_nd_add(fixed_counts, tf.stack([poem, ids], axis=1), tf.ones_like(ids, tf.int8)))

    def initial_state(self, batch):
        return (self.fixed_counts,)

    def apply(self, logits, state, step):
        (counts,) = state
        allowed = logits > NEG_INF
        limited = allowed & ~(self.no_repeat[:, step.t][:, None] & (counts >= poem_request.MAX_USES))
        return mask(logits, tf.where(tf.reduce_any(limited, axis=1, keepdims=True), limited, allowed))

    def update(self, state, step):
        (counts,) = state
        chosen = tf.one_hot(step.token, tf.shape(counts)[1], on_value=True, off_value=False)
        return (counts + tf.cast(chosen & (self.no_repeat[:, step.t] & ~step.done)[:, None], tf.int8),)


def mid_sentence(free, closes, prev):
    """bool (B,): a free poem whose last character does not close a sentence (。？！), where it may not end."""
    return free & ~tf.gather(closes, prev)


class EndAfterSentence(LogitsProcessor):
    """A free poem ends only after a mark that closes a sentence (。？！), never in the middle of a line.

    The plan lets a free poem end after any character, and one of the four
    poems of the README's first command ended ``…沙秋夕照收。胡沙``. A step
    where the end is all the plan leaves (the poem's ``max_len``) is left
    alone, so the poem is cut there as before. ``NaturalEnd``, which gives
    the end its score after the sampling cuts, asks ``mid_sentence`` too.
    """

    IS_MASK = True

    SIGNATURE = {"free": spec([None], tf.bool),  # (B,): a free poem
                 "closes": spec([None], tf.bool)}  # (V,): the marks that close a sentence

    @classmethod
    def from_plan(cls, plan, settings):
        return {"free": plan.free_poem, "closes": plan.couplet_end}

    def apply(self, logits, state, step):
        is_end = end_column(logits)
        others = can_go_on(logits, is_end)
        return tf.where(is_end & (mid_sentence(self.free, self.closes, step.prev) & others)[:, None], NEG_INF, logits)


class Couplets(LogitsProcessor):
    """A free poem given its length in couplets (sentences closed by 。？！) ends after the last of them.

    Left to the model, free poems ended 13 characters shorter than real ones
    on average, and the realism judges told them apart by that before
    anything they said (issue 27). So ``write`` draws each free poem's
    couplets from a real poem's (``titles.draw_shape``), or takes the
    user's ``couplets``, and the end is masked until that many sentences are
    closed, then it is all there is. A row without a count (0: the model
    ends it, where ``NaturalEnd`` draws the end), or a vocabulary without the
    marks, is left alone, as is a step where the end is all the plan leaves
    (the poem's ``max_len``), so a poem too long for it is cut there as before.
    """

    IS_MASK = True

    SIGNATURE = {"couplets": spec([None], tf.int32),  # (B,): couplets before the end; 0: where the model ends it
                 "closes": spec([None], tf.bool)}  # (V,): the marks that close a couplet

    @classmethod
    def from_plan(cls, plan, settings):
        counted = plan.couplets * plan.couplet_end.any()
        return {"couplets": counted.astype(np.int32), "closes": plan.couplet_end}

    def initial_state(self, batch):
        return (tf.zeros(tf.reshape(batch, [1]), tf.int32),)  # couplets closed so far

    def apply(self, logits, state, step):
        (closed,) = state
        counted = self.couplets > 0

        def hold():  # only for asks with a counted poem: no (B, V) work per step for the others
            is_end = end_column(logits)
            others = can_go_on(logits, is_end)
            early = (counted & (closed < self.couplets) & others)[:, None] & is_end
            due = (counted & (closed >= self.couplets))[:, None] & ~is_end
            return tf.where(early | due, NEG_INF, logits)

        return tf.cond(tf.reduce_any(counted), hold, lambda: logits)

    def update(self, state, step):
        (closed,) = state
        return (closed + tf.cast(tf.gather(self.closes, step.token) & ~step.done, tf.int32),)


class LineChars(LogitsProcessor):
    """A free poem given its line length holds every line to it: characters until then, then a mark.

    Left to the model, two free poems in three had five-character lines,
    where one real poem in two has (issue 27). So ``write`` draws each free
    poem's line length with its couplets, from the same real poem
    (``titles.draw_shape``), or takes the user's ``line_chars``. Within the
    poem's content, a line shorter than that may not take a mark (nor any
    other token that is not a Han character, but the end, which
    ``Couplets`` and ``EndAfterSentence`` rule), and a line that long must
    take one; which mark, ， or 。, is the model's. A row without a length (0)
    is left alone, and so is a step the mask would leave empty.
    """

    IS_MASK = True

    SIGNATURE = {"line_chars": spec([None], tf.int32),  # (B,): characters in every line; 0: the model's choice
                 "han": spec([None], tf.bool)}  # (V,)

    @classmethod
    def from_plan(cls, plan, settings):
        return {"line_chars": plan.line_chars, "han": plan.han}

    def initial_state(self, batch):
        return (tf.zeros(tf.reshape(batch, [1]), tf.int32),)  # Han characters of the content since the last mark

    def apply(self, logits, state, step):
        (said,) = state
        held = (self.line_chars > 0) & step.in_content

        def hold():  # only for asks with a held line: no (B, V) work per step for the others
            is_end = end_column(logits)
            short = (held & (said < self.line_chars))[:, None] & ~self.han[None, :] & ~is_end
            full = (held & (said >= self.line_chars))[:, None] & self.han[None, :]
            masked = tf.where(short | full, NEG_INF, logits)
            return tf.where(tf.reduce_any(masked > NEG_INF, axis=-1, keepdims=True), masked, logits)

        return tf.cond(tf.reduce_any(held), hold, lambda: logits)

    def update(self, state, step):
        (said,) = state
        return (chars_in_line(said, self.han, step),)


# --------------------------------------------------------------------------
# Pulls: a bonus or penalty on the logits; the poem's log-probabilities stay the model's own


class _CharacterPull(LogitsProcessor):
    """A bonus on some characters of each poem until the poem has written them (in its content).

    The plan's ``WEIGHTS`` array (B, V) says how much of the bonus, the one
    setting in ``SETTINGS``, each character gets.
    """

    SIGNATURE = {"pull": spec([None, None], tf.float32)}  # (B, V)
    WEIGHTS = ""

    @classmethod
    def from_plan(cls, plan, settings):
        (name,) = cls.SETTINGS
        return {"pull": getattr(plan, cls.WEIGHTS) * cls.setting(settings, name, len(plan.lengths))[:, None]}

    def initial_state(self, batch):
        return (self.pull,)

    def apply(self, logits, state, step):
        (pull,) = state
        return logits + tf.where(step.in_content[:, None], pull, 0.0)

    def update(self, state, step):
        (pull,) = state
        chosen = tf.one_hot(step.token, tf.shape(pull)[1], on_value=True, off_value=False)
        return (tf.where(chosen & step.in_content[:, None], 0.0, pull),)


class Keywords(_CharacterPull):
    """``keyword_bonus`` on each of the request's keywords not yet written."""

    SETTINGS = {"keyword_bonus": np.float32}
    WEIGHTS = "keyword_tokens"


class Title(_CharacterPull):
    """``title_bonus`` times each title character's weight (``titles.weight``) until it is written."""

    SETTINGS = {"title_bonus": np.float32}
    WEIGHTS = "title_weights"


class LineEnd(LogitsProcessor):
    """Where the first line of a short-lined poem ends, which the model cannot yet know: characters that end lines."""

    SIGNATURE = {"line_end_step": spec([None, None], tf.bool),  # (B, T)
                 "end_lift": spec([None], tf.float32),  # (V,): how readily each token ends a line
                 "bonus": spec([None], tf.float32)}  # (B,)
    SETTINGS = {"line_end_bonus": np.float32}

    @classmethod
    def from_plan(cls, plan, settings):
        return {"line_end_step": plan.line_end_step, "end_lift": plan.end_lift,
                "bonus": cls.setting(settings, "line_end_bonus", len(plan.lengths))}

    def apply(self, logits, state, step):
        at_end = self.line_end_step[:, step.t]  # true for at most one step of a poem: skip the (B, V) add elsewhere
        return tf.cond(tf.reduce_any(at_end),
                       lambda: logits + tf.where(at_end[:, None], self.bonus[:, None] * self.end_lift[None, :], 0.0),
                       lambda: logits)


@dataclasses.dataclass
class ReuseTable:
    """Character pairs to avoid: what followed each character in some poems.

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


class Reuse(LogitsProcessor):
    """Minus ``reuse_penalty`` on a character that would repeat a pair an earlier poem of the ask wrote.

    The setting ``reuse`` is (a :class:`ReuseTable`, each row's set in it),
    built from ``ranking.AskMemory`` round by round (``drafts.generate``);
    without it there is nothing to penalise.
    """

    SIGNATURE = {"index": spec([None, None], tf.int32),  # (G, V): row of successors per (set, previous token)
                 "successors": spec([None, None], tf.int32),  # (R, K): characters written after it, V-padded
                 "group": spec([None], tf.int32),  # (B,): each poem's set
                 "penalty": spec([None], tf.float32)}  # (B,)
    SETTINGS = {"reuse_penalty": np.float32}

    @classmethod
    def from_plan(cls, plan, settings):
        rows = len(plan.lengths)
        if "reuse" not in settings:
            table, group, penalty = ReuseTable.empty(plan.mask_table.shape[1]), np.zeros(rows), np.zeros(rows)
        else:
            (table, group), penalty = settings["reuse"], cls.setting(settings, "reuse_penalty", rows)
        return {"index": table.index, "successors": table.successors, "group": np.asarray(group, np.int32),
                "penalty": np.asarray(penalty, np.float32)}

    def apply(self, logits, state, step):
        vocab_size = tf.shape(logits)[1]

        def penalise():
            successors = tf.gather(self.successors, tf.gather_nd(self.index, tf.stack([self.group, step.prev], -1)))
            reused = row_mask(successors, successors < vocab_size, vocab_size)
            return logits - tf.where(reused, self.penalty[:, None], 0.0)

        return tf.cond(tf.reduce_any(self.penalty > 0), penalise, lambda: logits)


class RepeatPenalty(LogitsProcessor):
    """Free poems: minus ``repeat_penalty`` from a Han character's logit for each use past MAX_USES (the third
    use of 月 costs it once, the fourth twice).

    A regular poem masks a third use (``NoRepeat``); a free poem has no form
    to say where one belongs, and without a pull a quarter of the shipped
    model's free poems used some character three times or more, where 7 %
    of real ones do (issue 27). A penalty, not a mask: a refrain can still
    come back when the model wants it enough. Lyrics streams are left alone
    (the plan's ``free_poem``): a chorus repeats.
    """

    SIGNATURE = {"han": spec([None], tf.bool),  # (V,)
                 "penalty": spec([None], tf.float32)}  # (B,): 0 where the poem is not free
    SETTINGS = {"repeat_penalty": np.float32}

    @classmethod
    def from_plan(cls, plan, settings):
        penalty = cls.setting(settings, "repeat_penalty", len(plan.lengths)) * plan.free_poem
        return {"han": plan.han, "penalty": penalty.astype(np.float32)}

    def initial_state(self, batch):
        return (tf.zeros(tf.stack([batch, tf.size(self.han)]), tf.int8),)  # uses of each character

    def apply(self, logits, state, step):
        (uses,) = state

        def penalise():  # only for asks with a free poem: no (B, V) work per step for regular ones
            past = tf.cast(tf.maximum(uses - (poem_request.MAX_USES - 1), 0), tf.float32)
            return logits - self.penalty[:, None] * past

        return tf.cond(tf.reduce_any(self.penalty > 0), penalise, lambda: logits)

    def update(self, state, step):
        (uses,) = state

        def count():
            counted = self.han[None, :] & (step.in_content & ~step.done & (self.penalty > 0))[:, None]
            chosen = tf.one_hot(step.token, tf.size(self.han), on_value=True, off_value=False)
            return uses + tf.cast(chosen & counted & (uses < tf.int8.max), tf.int8)

        return (tf.cond(tf.reduce_any(self.penalty > 0), count, lambda: uses),)


class Doubling(LogitsProcessor):
    """Minus ``double_penalty`` from the previous character's logit, where Tang poets seldom double it.

    萧萧 and 悠悠 are Tang verse; 源源, 多多 and 西西 are not, and read aloud
    they gave the shipped model's poems away (``corpus.doubles`` has the
    counts). Lyrics streams are left alone (the plan's ``stream``).
    """

    SIGNATURE = {"rare_double": spec([None], tf.bool),  # (V,)
                 "penalty": spec([None], tf.float32)}  # (B,): 0 for a stream
    SETTINGS = {"double_penalty": np.float32}

    @classmethod
    def from_plan(cls, plan, settings):
        penalty = cls.setting(settings, "double_penalty", len(plan.lengths)) * ~plan.stream
        return {"rare_double": plan.rare_double, "penalty": penalty.astype(np.float32)}

    def apply(self, logits, state, step):
        def penalise():
            again = tf.one_hot(step.prev, tf.shape(logits)[1], on_value=True, off_value=False)
            hit = again & self.rare_double[None, :] & step.in_content[:, None]
            return logits - tf.where(hit, self.penalty[:, None], 0.0)

        return tf.cond(tf.reduce_any(self.penalty > 0), penalise, lambda: logits)


class CoupletRepeat(LogitsProcessor):
    """Minus ``couplet_repeat_penalty`` from a Han character already said in the couplet being written (a ci:
    its sentence), unless it doubles the character just written (萧萧: ``Doubling`` judges those).

    A Tang poet seldom says a character twice in one couplet, least of all
    in a 律诗, whose middle couplets are parallel: 13.7 % of the held-out
    七绝's couplets do, 3.3 % of 五律's. The shipped model (stage 11) did so in
    35 % and 19 % (``forms.couplet_repeats``, ``benchmarks/realism.py``), and
    read aloud (满庭歌吹满山, 夜深一夜) it gave them away (issue 27). A
    penalty, not a mask: 今年花似去年好 stays possible. Lyrics streams are
    left alone (the plan's ``stream``).
    """

    SIGNATURE = {"han": spec([None], tf.bool),  # (V,)
                 "couplet_end": spec([None], tf.bool),  # (V,): punctuation that starts the next couplet afresh
                 "penalty": spec([None], tf.float32)}  # (B,): 0 for a stream
    SETTINGS = {"couplet_repeat_penalty": np.float32}

    @classmethod
    def from_plan(cls, plan, settings):
        penalty = cls.setting(settings, "couplet_repeat_penalty", len(plan.lengths)) * ~plan.stream
        return {"han": plan.han, "couplet_end": plan.couplet_end, "penalty": penalty.astype(np.float32)}

    def initial_state(self, batch):
        return (tf.zeros(tf.stack([batch, tf.size(self.han)]), tf.bool),)  # said in this couplet

    def apply(self, logits, state, step):
        (said,) = state

        def penalise():
            double = tf.one_hot(step.prev, tf.shape(logits)[1], on_value=True, off_value=False)
            return logits - tf.where(said & ~double, self.penalty[:, None], 0.0)

        return tf.cond(tf.reduce_any(self.penalty > 0), penalise, lambda: logits)

    def update(self, state, step):
        (said,) = state

        def remember():
            chosen = tf.one_hot(step.token, tf.size(self.han), on_value=True, off_value=False)
            counted = self.han[None, :] & (step.in_content & ~step.done)[:, None]
            ended = tf.gather(self.couplet_end, step.token)[:, None]  # PAD (a finished row) ends nothing
            return tf.where(ended, False, said | (chosen & counted))

        return (tf.cond(tf.reduce_any(self.penalty > 0), remember, lambda: said),)


class LineEndRepeat(LogitsProcessor):
    """Minus ``line_end_repeat_penalty`` at a line's last character from each character an earlier line ended on.

    Tang poets seldom end two lines of a poem on one character: 3.8 % of
    the held-out real poems do, 0.3 % of the held-out 五律. The shipped
    model's free poems did in 34 % (堂 or 难 ending three lines of one poem),
    its 五律 in 5 %, and a reader hears it at once (issue 27). A rhyme step
    may not repeat an earlier line's end at all (``Rhyme``); this pulls
    against the rest: the unrhymed line ends of a regular poem, template or
    ci (the plan's ``line_last``), and every line end of a free poem given
    a line length (``line_chars``), whose last character is known before it
    is written. A free poem whose lines end where the model puts a mark has
    no such step and is left alone, and so are lyrics streams (a chorus
    repeats). A penalty, not a mask: the log-probabilities the ranking reads
    stay the model's own.
    """

    SIGNATURE = {"line_last": spec([None, None], tf.bool),  # (B, T)
                 "line_chars": spec([None], tf.int32),  # (B,): a free poem's characters in every line; 0: none
                 "han": spec([None], tf.bool),  # (V,)
                 "penalty": spec([None], tf.float32)}  # (B,): 0 for a stream
    SETTINGS = {"line_end_repeat_penalty": np.float32}

    @classmethod
    def from_plan(cls, plan, settings):
        penalty = cls.setting(settings, "line_end_repeat_penalty", len(plan.lengths)) * ~plan.stream
        return {"line_last": plan.line_last, "line_chars": plan.line_chars, "han": plan.han,
                "penalty": penalty.astype(np.float32)}

    def initial_state(self, batch):
        # The characters earlier lines ended on, and the Han characters of the content since the last mark.
        return tf.zeros(tf.stack([batch, tf.size(self.han)]), tf.bool), tf.zeros(tf.reshape(batch, [1]), tf.int32)

    def line_ends_here(self, said, step):
        """bool (B,): this step writes the last character of a line."""
        free_end = (self.line_chars > 0) & (said == self.line_chars - 1)
        return step.in_content & (self.line_last[:, step.t] | free_end) & (self.penalty > 0)

    def apply(self, logits, state, step):
        ended, said = state
        here = self.line_ends_here(said, step)
        return tf.cond(tf.reduce_any(here),  # one step a line: no (B, V) work at the others
                       lambda: logits - tf.where(here[:, None] & ended, self.penalty[:, None], 0.0),
                       lambda: logits)

    def update(self, state, step):
        ended, said = state
        here = self.line_ends_here(said, step) & ~step.done

        def remember():
            chosen = tf.one_hot(step.token, tf.shape(ended)[1], on_value=True, off_value=False)
            return ended | (chosen & here[:, None])

        ended = tf.cond(tf.reduce_any(here), remember, lambda: ended)
        return ended, chars_in_line(said, self.han, step)


# --------------------------------------------------------------------------
# Sampling: temperature, top-k, top-p, and the noise that makes the argmax a sample


class Temperature(LogitsProcessor):
    """Divide by the temperature (0 = greedy: see GumbelNoise); a free poem's temperature is ``free_heat`` times it.

    The masks of a form, template or tune keep a shaped poem off the
    model's likeliest characters; a free poem has none, and at the
    temperature chosen for the forms it was more predictable than real verse
    (5-gram 0.83x real, against 1.05x for 七绝) and easy to tell from it.
    """

    SIGNATURE = {"temperature": spec([None], tf.float32)}
    SETTINGS = {"temperature": np.float64, "free_heat": np.float64}

    @classmethod
    def from_plan(cls, plan, settings):
        rows = len(plan.lengths)
        value = cls.setting(settings, "temperature", rows) * np.where(
            plan.free_poem, cls.setting(settings, "free_heat", rows), 1.0)
        # Beyond float32's range a temperature is as good as infinite: every allowed character equally likely.
        return {"temperature": np.minimum(value, 1e30).astype(np.float32)}

    def apply(self, logits, state, step):
        return logits / tf.maximum(self.temperature, 1e-6)[:, None]


class TopK(LogitsProcessor):
    """Keep each row's ``top_k`` most likely characters (0 = all)."""

    SIGNATURE = {"top_k": spec([None], tf.int32)}
    SETTINGS = {"top_k": np.int32}

    def apply(self, logits, state, step):
        top_k = self.top_k

        def keep_top_k():
            k_max = tf.clip_by_value(tf.reduce_max(top_k), 1, tf.shape(logits)[-1])  # >= 1: XLA compiles this branch
            best = tf.math.top_k(logits, k_max).values
            kth = tf.gather(best, tf.clip_by_value(top_k - 1, 0, k_max - 1), batch_dims=1)[:, None]
            return tf.where((top_k[:, None] > 0) & (logits < kth), NEG_INF, logits)

        return tf.cond(tf.reduce_any(top_k > 0), keep_top_k, lambda: logits)


SHORTLIST = 256  # characters: a partial sort this long holds the whole nucleus of about nine rows in ten


def nucleus_floor(scores, probabilities, mass):
    """The lowest score inside each row's nucleus: the fewest best-scoring characters holding ``mass`` of the probability.

    Top-p scores a character by its logit, typical sampling by how near its
    surprisal is to the step's entropy; both keep a nucleus of that order.
    It is looked for among each row's SHORTLIST best scores first (a partial
    sort); only the rows whose shortlist holds less than ``mass`` of their
    probability (about one in ten, writing 七绝 at the defaults) sort their
    whole vocabulary. Sorting every row at every step was 44 % of the time
    of writing 七绝 (``benchmarks/decode_profile.py``). Rows with ``mass``
    1 keep everything (floor -inf).
    """

    def floor(ordered, ordered_probabilities, row_mass):
        # The best character always is inside, even for a mass that float32 rounds to 0 (a denormal such as
        # 1e-45), where ``before < mass`` would keep nothing.
        before = tf.math.cumsum(ordered_probabilities, axis=-1, exclusive=True)
        inside = (before < row_mass[:, None]) | (tf.range(tf.shape(ordered)[-1]) == 0)[None, :]
        lowest = tf.reduce_min(tf.where(inside, ordered, tf.float32.max), axis=-1)
        return tf.where(row_mass < 1.0, lowest, NEG_INF)

    shortlist = tf.math.top_k(scores, tf.minimum(SHORTLIST, tf.shape(scores)[-1]))
    held = tf.gather(probabilities, shortlist.indices, batch_dims=1)
    lowest = floor(shortlist.values, held, mass)
    short = tf.where((tf.reduce_sum(held, axis=-1) < mass) & (mass < 1.0))[:, 0]

    def sort_the_short_rows():
        order = tf.argsort(tf.gather(scores, short), axis=-1, direction="DESCENDING")
        exact = floor(tf.gather(tf.gather(scores, short), order, batch_dims=1),
                      tf.gather(tf.gather(probabilities, short), order, batch_dims=1), tf.gather(mass, short))
        return tf.tensor_scatter_nd_update(lowest, short[:, None], exact)

    return tf.cond(tf.size(short) > 0, sort_the_short_rows, lambda: lowest)


class TopP(LogitsProcessor):
    """Nucleus sampling: the smallest set of characters with ``top_p`` of the probability (1 = off)."""

    SIGNATURE = {"top_p": spec([None], tf.float32)}
    SETTINGS = {"top_p": np.float32}

    def apply(self, logits, state, step):
        def keep_top_p():
            probabilities = tf.exp(logits - tf.reduce_logsumexp(logits, axis=-1, keepdims=True))
            return tf.where(logits < nucleus_floor(logits, probabilities, self.top_p)[:, None], NEG_INF, logits)

        return tf.cond(tf.reduce_any(self.top_p < 1.0), keep_top_p, lambda: logits)


class MinP(LogitsProcessor):
    """Keep the characters at least ``min_p`` times as likely as the most likely one (0 = off).

    Min-p sampling (Nguyen et al. 2024): the cut follows the model's
    confidence, narrow where one character dominates and wide where many are
    plausible, where top-p keeps a fixed share of the probability.
    """

    SIGNATURE = {"min_p": spec([None], tf.float32)}
    SETTINGS = {"min_p": np.float32}

    def apply(self, logits, state, step):
        def keep_likely():
            floor = tf.reduce_max(logits, axis=-1) + tf.math.log(self.min_p)  # log(0) = -inf: the row keeps all
            return tf.where(logits < floor[:, None], NEG_INF, logits)

        return tf.cond(tf.reduce_any(self.min_p > 0), keep_likely, lambda: logits)


class TypicalP(LogitsProcessor):
    """Locally typical sampling (Meister et al. 2023): keep the characters whose surprisal is nearest the step's
    entropy, as few as hold ``typical_p`` of the probability (1 = off).

    Top-p and min-p keep the likeliest characters; a poet's next character
    is seldom the likeliest, but about as surprising as the model expects on
    average at that point. Where one character is far more predictable than
    that, typical sampling drops it as it drops the unlikely tail, which is
    the pull towards real verse that issue 27 measures. Its nucleus is
    top-p's, ordered by nearness to the entropy (``nucleus_floor``).
    """

    SIGNATURE = {"typical_p": spec([None], tf.float32)}
    SETTINGS = {"typical_p": np.float32}

    def apply(self, logits, state, step):
        def keep_typical():
            log_p = tf.nn.log_softmax(logits)
            p = tf.exp(log_p)
            entropy = -tf.reduce_sum(tf.math.multiply_no_nan(log_p, p), axis=-1, keepdims=True)
            nearness = -tf.abs(-log_p - entropy)  # masked characters: -inf, never inside
            return tf.where(nearness < nucleus_floor(nearness, p, self.typical_p)[:, None], NEG_INF, logits)

        return tf.cond(tf.reduce_any(self.typical_p < 1.0), keep_typical, lambda: logits)


class Overuse(LogitsProcessor):
    """Inside the nucleus, minus ``overuse_penalty`` times each character's over-use in the poem's form, at the
    step's place in the line (``overuse.PLACES``: its first character, its last, the others).

    The setting ``overuse`` is (the model's ``overuse.OveruseTable``, each
    row's first line of it), given by ``drafts.draft_poems`` where the model
    has a table; without it there is nothing to pull. A line starts after any
    token that is not a Han character; it ends where the plan says so
    (``line_last``; a free poem's never does, and its table counts its line
    ends inside). It comes after the sampling cuts, so it only reweighs the
    characters the model finds plausible there: before them it let in
    characters no poet would write (天河流溷溷, 虎豹麤), and the 5-gram ratio of
    五律 rose most (docs/results.md).
    """

    SIGNATURE = {"bias": spec([None, None], tf.float32),  # (1 + 3F, V): row 0 zeros, then per form its places
                 "row": spec([None], tf.int32),  # (B,): the form's first row, 0 for none
                 "penalty": spec([None], tf.float32),  # (B,)
                 "line_last": spec([None, None], tf.bool),  # (B, T)
                 "han": spec([None], tf.bool)}  # (V,)
    SETTINGS = {"overuse_penalty": np.float32}
    INSIDE, START, END = (overuse.PLACES.index(p) for p in ("inside", "line start", "line end"))

    @classmethod
    def from_plan(cls, plan, settings):
        rows = len(plan.lengths)
        line = {"line_last": plan.line_last, "han": plan.han}
        if "overuse" not in settings:
            return {"bias": np.zeros((1, plan.mask_table.shape[1]), np.float32), "row": np.zeros(rows, np.int32),
                    "penalty": np.zeros(rows, np.float32), **line}
        table, row = settings["overuse"]
        return {"bias": table.bias, "row": np.asarray(row, np.int32),
                "penalty": cls.setting(settings, "overuse_penalty", rows), **line}

    def apply(self, logits, state, step):
        penalty = tf.where(step.in_content & (self.row > 0), self.penalty, 0.0)

        def pull_down():
            place = tf.where(self.line_last[:, step.t], self.END,
                             tf.where(tf.gather(self.han, step.prev), self.INSIDE, self.START))
            row = tf.where(self.row > 0, self.row + place, 0)
            return logits - penalty[:, None] * tf.gather(self.bias, row)  # -inf stays -inf: the bias is finite

        return tf.cond(tf.reduce_any(penalty > 0), pull_down, lambda: logits)


class NaturalEnd(LogitsProcessor):
    """Where a poem may end (a free poem, after any character), it ends as often as the model itself would.

    Temperature and top-p sharpen each step towards its likeliest tokens.
    That is what they are for among the characters, but the end of a poem is
    one token (EOS) set against the thousands of ways to go on, so they
    sharpen it into ending early: at the defaults a fifth of the shipped
    model's free poems had two lines or four, and few ran to twelve (issue
    27). Here the end is drawn at the model's own probability p: after the
    sampling processors have shaped the other characters, EOS gets the
    score that gives it p of the whole, log(sum of the others' exp) +
    log(p / (1 - p)), so that the Gumbel argmax ends the poem with
    probability p and otherwise draws a character as before. A greedy row
    ends where the model more likely ends than not. Steps where the plan
    does not allow the end (every step of a regular poem but its last,
    where EOS is all there is), or ``EndAfterSentence`` does not, are left
    alone, and so are poems whose end ``Couplets`` sets.
    """

    SIGNATURE = {"end_allowed": spec([None, None], tf.bool),  # (B, T): the plan allows EOS at this step
                 "natural": spec([None], tf.bool),  # (B,)
                 "free": spec([None], tf.bool),  # (B,) and (V,): EndAfterSentence's, where the end is not allowed
                 "closes": spec([None], tf.bool)}
    SETTINGS = {"natural_end": np.bool_}

    @classmethod
    def from_plan(cls, plan, settings):
        return {"end_allowed": plan.mask_table[plan.step_masks, vocab_lib.EOS],
                "natural": cls.setting(settings, "natural_end", len(plan.lengths)) & (plan.couplets == 0),
                **EndAfterSentence.from_plan(plan, settings)}

    def apply(self, logits, state, step):
        here = self.natural & self.end_allowed[:, step.t] & ~mid_sentence(self.free, self.closes, step.prev)

        def at_the_models_rate():
            is_end = end_column(logits)
            others = tf.reduce_logsumexp(tf.where(is_end, NEG_INF, logits), axis=-1)
            log_end = tf.nn.log_softmax(step.model_logits)[:, vocab_lib.EOS]
            end_score = others + log_end - tf.math.log(-tf.math.expm1(log_end))  # log p - log(1 - p)
            chosen = here & (others > NEG_INF)  # where EOS is all that is left, it stays so
            return tf.where(is_end & chosen[:, None], end_score[:, None], logits)

        return tf.cond(tf.reduce_any(here), at_the_models_rate, lambda: logits)


class GumbelNoise(LogitsProcessor):
    """Gumbel noise keyed by each poem's ``keys``: the argmax of the result is an exact categorical sample.

    Greedy rows (temperature 0) get none, so their argmax is greedy decoding.
    """

    SIGNATURE = {"keys": spec([None], tf.int64),  # (B,): noise.row_key of each poem
                 "greedy": spec([None], tf.bool)}

    @classmethod
    def from_plan(cls, plan, settings):
        greedy = Temperature.from_plan(plan, settings)["temperature"] <= 0  # as the Temperature processor reads it
        return {"keys": per_row(settings.get("keys", 0), len(plan.lengths), np.int64), "greedy": greedy}

    def apply(self, logits, state, step):
        uniform = noise.uniform_noise(self.keys, step.t, tf.shape(logits)[1])
        return logits + tf.where(self.greedy[:, None], 0.0, -tf.math.log(-tf.math.log(uniform)))


# In order: masks, then pulls, then sampling.
PROCESSORS = (Form, HeardPairs, Rhyme, NoRepeat, EndAfterSentence, Couplets, LineChars,
              Keywords, Title, LineEnd, Reuse, RepeatPenalty, Doubling, CoupletRepeat, LineEndRepeat,
              Temperature, TopK, TopP, MinP, TypicalP, Overuse, NaturalEnd, GumbelNoise)
