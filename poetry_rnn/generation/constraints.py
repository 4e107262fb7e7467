"""A poem request -> per-step masks over the vocabulary, checked up front.

A ``poem_request.PoemRequest`` says what the user asked for (form, begin,
acrostic, template, rhyme and its scheme, tones, repeats, title, keywords). :func:`plan`
turns a batch of requests into a :class:`DecodePlan`: for every poem and step,
which tokens are allowed, which steps are rhyme steps, which rhyme groups the
poem may use, which neighbours would change how a character is heard, and
where the no-repeat mask applies. It raises :class:`PoetryError` (one line
naming the problem) when a request can never be met, so that a decoder
following the plan's contract always finishes every poem and every finished
poem passes ``validator.check_poem``, whatever the logits.

The decoder contract (``sampler.Decoder`` runs it in-graph; each pull and mask
below is one processor of ``processors.PROCESSORS``)::

    group_set[b] = initial_groups[b];  used[b] = {};  count[b] = fixed_counts[b]   # group_set: one per rhyme set
    uses[b] = {}                               # a free poem's Han characters, for its soft repeat penalty
    said[b] = {}                               # the Han characters of the couplet being written
    ended[b] = {}                              # the characters earlier lines ended on
    pull[b] = keyword_bonus[b] * keyword_tokens[b] + title_bonus[b] * title_weights[b]
    for t in range(lengths[b]):
        allowed = mask_table[step_masks[b, t]]
        if t >= content_start[b]:              # a soft pull, not a mask: keywords and title characters not yet written
            logits += pull[b]
        if line_end_step[b, t]:                # the first line ends here, which the model cannot know yet
            logits += line_end_bonus[b] * end_lift
        logits -= reuse_penalty[b] * {y : (prev, y) written by an earlier round of b's ask}   # ranking.AskMemory
        logits -= repeat_penalty[b] * free_poem[b] * max(uses[b] - MAX_USES + 1, 0)         # free poems only
        if t >= content_start[b] and not stream[b] and rare_double[prev]:   # 源源: a double no poet writes
            logits[prev] -= double_penalty[b]
        if not stream[b]:                      # said already in this couplet (a double of prev is Doubling's)
            logits[said[b] - {prev}] -= couplet_repeat_penalty[b]
        line_ends = line_last[b, t] or line_chars[b] == 1 + Han characters since the last mark   # free poems
        if line_ends and not stream[b]:        # the last character of a line: not what an earlier one ended on
            logits[ended[b]] -= line_end_repeat_penalty[b]
        if context_need[b, t]:                 # keep prev and this character at their heard readings
            allowed &= ~{y : y = pair_tokens[prev, k], pair_kinds[prev, k] & context_need[b, t]}
        if s := rhyme_set[b, t]:               # a ci has several rhyme sets; a regular poem one
            allowed &= any(group_set[b][s][:, None] & group_members, axis=0) & ~used[b]
        if no_repeat[b, t] and any(allowed & (count[b] < MAX_USES)):
            allowed &= count[b] < MAX_USES     # always, where repeat_guaranteed[b]
        v = sample(logits, allowed)            # never empty (checked by plan); a free poem's temperature x free_heat
        if v == EOS: stop
        if no_repeat[b, t]: count[b][v] += 1
        if s: group_set[b][s] &= group_members[:, v]
        if s or rhyme_watch[b, t]: used[b] |= {v}    # no rhyme repeats an earlier line's last character
        if t >= content_start[b]: pull[b][v] = 0
        if free_poem[b] and han[v] and t >= content_start[b]: uses[b][v] += 1
        if line_ends and not stream[b]: ended[b] |= {v}
        if couplet_end[v]: said[b] = {}
        elif han[v] and t >= content_start[b]: said[b] |= {v}

``validator.check_poem`` is the independent validator: it re-derives shape,
fixed characters, rhyme and tones from a finished poem with ``prosody``'s
per-character functions and never looks at masks. Both read a request the
same way, through ``poem_request``.
"""

import collections
import dataclasses

import numpy as np

from poetry_rnn.verse import forms, poem_request, prosody as prosody_lib
from poetry_rnn.corpus import doubles, line_ends, titles
from poetry_rnn.model import vocab as vocab_lib
from poetry_rnn.generation import vocab_prosody
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.verse.poem_request import MAX_USES
from poetry_rnn.model.vocab import BOS, EOS, PAD, SEP, UNK


@dataclasses.dataclass
class DecodePlan:
    """Masks for a batch of B poems over T steps and a vocabulary of V tokens.

    mask_table:     bool (M, V), distinct allowed sets; row 0 is "EOS only"
    step_masks:     int32 (B, T), row of mask_table per step; steps at or past
                    lengths[b] point at row 0
    rhyme_set:      int32 (B, T), at a free rhyme step its rhyme set (1, 2, ...:
                    a ci changes rhyme, a regular poem has one), else 0; the
                    dynamic rhyme mask applies there (a fixed rhyming
                    character is checked here, in the plan)
    group_members:  bool (G, V), tokens usable as the rhyme of group g; the
                    groups of every rhyme book in the batch (a scheme's 平
                    rhymes, a ci's book in any tone), one book after another
    rhyme_watch:    bool (B, T), the last character of a line that is not a
                    rhyme step (free, in a poem that rhymes): a later rhyme
                    may not repeat it (飞 ending the first line and the last)
    initial_groups: bool (B, S, G), per rhyme set, groups that can still
                    complete every rhyme step of the set; all False for poems
                    without rhyme
    lengths:        int32 (B,), steps of poem b including the final EOS step
    content_start:  int32 (B,), step where the content begins (after the
                    prompt for models that read it as a prefix, else 0)
    context_need:   int32 (B, T), pair kinds to mask after the previous token:
                    CHANGES_FIRST when the previous step's tone or rhyme is
                    enforced, CHANGES_SECOND when this step's is (free xinyun
                    steps only; 0 elsewhere)
    pair_tokens, pair_kinds: int32 (V, K), ``vocab_prosody.VocabProsody``'s pairs
    no_repeat:      bool (B, T), free character steps of a form, template or ci under
                    the at-most-MAX_USES limit
    fixed_counts:   int8 (B, V), uses of each token by the poem's fixed
                    characters (begin, acrostic, template), counted up front
    keyword_tokens: bool (B, V), the request's keywords: the decoder adds a
                    bonus to their logits until each is written (a keywords
                    model also reads them in its prompt)
    title_weights:  float32 (B, V), the title's characters that are not
                    keywords, each with its share of the title bonus
                    (``titles.weight``: how often poets write that title
                    character into the poem); 0 elsewhere. Pulled like keywords
                    (any poem model; a title or keywords model also reads
                    the title in its prompt)
    repeat_guaranteed: bool (B,), the no-repeat mask can never empty a step of
                    poem b (so it always applies); False where the vocabulary
                    is too small for that, and the mask steps aside rather
                    than leave nothing
    prompt_tokens:  int32 (B, P), the prompt's characters, PAD after them: a
                    prompt-bag model reads them at every step
                    (``PoetryModel.prompt_context``)
    line_end_step:  bool (B, T), the last free character of the first line of
                    a regular poem or template when it is shorter than
                    LONGEST_LINE, where the model cannot yet know that the
                    line ends: the decoder adds its line-end bonus times
                    ``end_lift`` there (``line_ends``)
    end_lift:       float32 (V,), how readily each token ends a line
                    (``line_ends.lift_vector``)
    line_last:      bool (B, T), the last character of a line of a regular
                    poem, template or ci (a free poem's lines end where the
                    model puts a mark, which no step knows beforehand): where
                    the over-use pull takes its form's line-end row
                    (``processors.Overuse``) and a character an earlier
                    line ended on is pulled down (``processors.LineEndRepeat``)
    free_poem:      bool (B,), a free poem (no form, template or tune; not a
                    lyrics stream, whose chorus repeats by nature): no mask
                    holds it to a shape, so its Han characters are penalised
                    softly for every use past MAX_USES, where a shaped poem
                    masks them (``processors.RepeatPenalty``), and it samples
                    with more heat (``processors.Temperature``)
    couplets:       int32 (B,), a free poem's length in couplets, where
                    ``processors.Couplets`` ends it; 0: where the model ends it
    line_chars:     int32 (B,), a free poem's characters in every line, held
                    by ``processors.LineChars`` (so ``LineEndRepeat`` knows
                    where its lines end); 0: the model's choice
    han:            bool (V,), the tokens that are one Han character
    stream:         bool (B,), a lyrics stream, not a poem: the pulls learnt
                    from Tang verse (``rare_double``) leave it alone
    rare_double:    bool (V,), Han characters Tang poets seldom double
                    (``doubles.rare_vector``): pulled down right after themselves
    couplet_end:    bool (V,), the punctuation that closes a couplet or a ci's
                    sentence (``forms.COUPLET_END``): a character said before
                    it may be said again after it (``processors.CoupletRepeat``)
    """

    mask_table: np.ndarray
    step_masks: np.ndarray
    rhyme_set: np.ndarray
    rhyme_watch: np.ndarray
    group_members: np.ndarray
    initial_groups: np.ndarray
    lengths: np.ndarray
    content_start: np.ndarray
    context_need: np.ndarray
    pair_tokens: np.ndarray
    pair_kinds: np.ndarray
    no_repeat: np.ndarray
    fixed_counts: np.ndarray
    keyword_tokens: np.ndarray
    title_weights: np.ndarray
    repeat_guaranteed: np.ndarray
    prompt_tokens: np.ndarray
    line_end_step: np.ndarray
    end_lift: np.ndarray
    line_last: np.ndarray
    free_poem: np.ndarray
    couplets: np.ndarray
    line_chars: np.ndarray
    han: np.ndarray
    stream: np.ndarray
    rare_double: np.ndarray
    couplet_end: np.ndarray


# --------------------------------------------------------------------------
# Steps


class _Rows:
    """Distinct mask rows, deduplicated by content; row 0 is EOS only."""

    def __init__(self, vocab):
        self.vocab = vocab
        self.by_key, self.by_bytes, self.rows = {}, {}, []
        self.lost = {}  # (scheme, need, row, per group) -> _exclusions, the same for every poem of a batch
        self.get(("tok", EOS), "the end of the poem")

    def size(self, vp, index, book=None):
        """Tokens in row ``index`` (or, given a ``vocab_prosody.RhymeBook``, of each group's members in it), cached."""
        key = (vp.scheme.name, "size", index, book and book.name)
        if key not in self.lost:
            row = self.rows[index]
            self.lost[key] = (book.members & row).sum(axis=1) if book else int(row.sum())
        return self.lost[key]

    def exclusions(self, vp, need, index, book=None):
        """_exclusions of row ``index`` (or of each of ``book``'s groups' members in it), cached."""
        key = (vp.scheme.name, need, index, book and book.name)
        if key not in self.lost:
            row = self.rows[index]
            self.lost[key] = _exclusions(vp, need, book.members & row if book else row)
        return self.lost[key]

    def _build(self, key):
        v = len(self.vocab)
        if key[0] == "tok":
            row = np.zeros(v, bool)
            row[key[1]] = True
        elif key[0] == "han":
            _, symbol, excluded, scheme = key
            vp = vocab_prosody.VocabProsody.build(self.vocab, scheme)
            row = vp.han.copy()
            if symbol == prosody_lib.P:
                row &= vp.ping
            elif symbol == prosody_lib.Z:
                row &= vp.ze
            row[list(excluded)] = False
        else:  # free: anything but PAD UNK BOS SEP (and EOS before the first character)
            _, allow_eos = key
            row = np.ones(v, bool)
            row[[PAD, UNK, BOS, SEP]] = False
            row[EOS] = allow_eos
        return row

    def get(self, key, where):
        index = self.by_key.get(key)
        if index is None:
            row = self._build(key)
            if not row.any():
                need = f" (needs {key[1]})" if key[0] == "han" and key[1] != prosody_lib.EITHER else ""
                raise PoetryError(f"no token of the vocabulary can stand at {where}{need}")
            index = self.by_bytes.setdefault(row.tobytes(), len(self.rows))
            if index == len(self.rows):
                self.rows.append(row)
            self.by_key[key] = index
        return index


_START_NAME = {"ping": "平起", "ze": "仄起"}
LONGEST_LINE = max(form.chars_per_line for form in forms.FORMS.values())  # 7: no regular line goes on after it


def tone_starts_that_fit(request):
    """The tone starts ('ping', 'ze') whose pattern every fixed character fits.

    Fixed characters (begin, acrostic, template) may clash with one pattern
    and not the other; a writer choosing 平起/仄起 at random can pick among
    these. Both when tones are off or there is no form; raises PoetryError
    for an invalid request.
    """
    resolved = poem_request.resolve_request(request)
    if request.tones == "off" or resolved.form is None:
        return list(poem_request.TONE_STARTS)
    return [
        start
        for start in poem_request.TONE_STARTS
        if _tone_clash(poem_request.request_slots(dataclasses.replace(request, tone_start=start), resolved),
                       poem_request.tone_scheme(request)) is None
    ]


def _tone_clash(slots, scheme):
    """The first fixed character whose tones miss its pattern symbol, or None."""
    for slot in slots:
        if slot.fixed and slot.tone != prosody_lib.EITHER and not prosody_lib.tone_ok(slot.fixed, slot.tone, scheme):
            return slot
    return None


def _token(vocab, c, source):
    if c not in vocab:
        raise PoetryError(f"{source} character {c!r} is not in the model's vocabulary")
    return vocab.id(c)


@dataclasses.dataclass
class _Steps:
    """One request's steps: mask rows and per-step flags, all of one length."""

    rows: list = dataclasses.field(default_factory=list)
    rhyme: list = dataclasses.field(default_factory=list)     # rhyme set at a free rhyme step, else 0
    rhyme_watch: list = dataclasses.field(default_factory=list)
    need: list = dataclasses.field(default_factory=list)       # context_need
    no_repeat: list = dataclasses.field(default_factory=list)
    line_end: list = dataclasses.field(default_factory=list)
    line_last: list = dataclasses.field(default_factory=list)
    fixed: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # token -> uses
    content_start: int = 0
    free_poem: bool = False
    couplets: int = 0
    line_chars: int = 0
    stream: bool = False
    slots: list = None
    keywords: list = dataclasses.field(default_factory=list)  # token ids the decoder pulls towards
    title: dict = dataclasses.field(default_factory=dict)  # the title's token ids -> titles.weight
    prompt: list = dataclasses.field(default_factory=list)  # the prompt's tokens, as the model reads them


    def add(self, rows, key, where, rhyme_set=0, need=0, no_repeat=False, line_end=False, rhyme_watch=False,
            line_last=False):
        """One more step: the mask row of ``key`` (PoetryError naming ``where`` if it is empty) and its flags."""
        self.rows.append(rows.get(key, where))
        self.line_last.append(line_last)
        self.rhyme.append(rhyme_set)
        self.rhyme_watch.append(rhyme_watch)
        self.need.append(need)
        self.no_repeat.append(no_repeat)
        self.line_end.append(line_end)


def _poem_steps(request, vocab, rows, condition, prompt_bag=False):
    """The :class:`_Steps` of one request: its prompt, then its content's steps."""
    resolved = poem_request.resolve_request(request)
    out = _Steps(stream=not request.stop_at_eos)  # a lyrics stream: never ends early
    out.keywords = [_token(vocab, c, "keywords") for c in request.keywords]
    out.title = {_token(vocab, c, "title"): titles.weight(c) for c in request.title if prosody_lib.is_han(c)}
    # A ci without a title of its own is prompted with its tune's name, as the ci model read its training ci
    # (those of the name's characters the vocabulary has: it is our choice, not the user's).
    tune = poem_request.tune_of(request)
    title = request.title or "".join(c for c in (tune.tune if tune else "") if c in vocab)
    for text, what in vocab_lib.prompt_fields(condition, title, request.keywords):
        tokens = [_token(vocab, c, what) for c in text]
        out.prompt += tokens
        if not prompt_bag:  # a prefix: forced steps before the content
            for token in tokens:
                out.add(rows, ("tok", token), f"the {what}")
            out.add(rows, ("tok", SEP), f"the end of the {what}")
    out.content_start = len(out.rows)
    if not resolved.shaped:
        _free_steps(request, vocab, rows, out)
    else:
        _shaped_steps(request, resolved, vocab, rows, out)
    out.add(rows, ("tok", EOS), "the end of the poem")
    return out


def _free_steps(request, vocab, rows, out):
    """A free poem: its begin characters, then up to max_len characters (EOS allowed after the first)."""
    out.free_poem = not out.stream
    out.couplets, out.line_chars = (request.couplets, request.line_chars) if out.free_poem else (0, 0)
    for c in request.begin:
        out.add(rows, ("tok", _token(vocab, c, "begin")), "the beginning")
    for k in range(len(request.begin), request.max_len):
        out.add(rows, ("free", k > 0 and request.stop_at_eos), f"character {k + 1}")


def _check_tones_fit(request, resolved, slots):
    """PoetryError naming the first fixed character whose tone misses the pattern (and the start that fits)."""
    scheme = poem_request.tone_scheme(request)
    clash = _tone_clash(slots, scheme)
    if clash is None:
        return
    tones = poem_request.tone_name(prosody_lib.char_tones(clash.fixed, scheme))
    if resolved.ci is not None:
        raise PoetryError(f"{clash.source} character {clash.fixed!r} at {clash.where} is {tones} but "
                          f"{resolved.ci.tune} needs {clash.tone} there")
    other = {"ping": "ze", "ze": "ping"}[request.tone_start]
    hint = ""
    if _tone_clash(poem_request.request_slots(dataclasses.replace(request, tone_start=other), resolved),
                   scheme) is None:
        hint = f" (tone_start={other!r}, {_START_NAME[other]}, fits)"
    raise PoetryError(
        f"{clash.source} character {clash.fixed!r} at {clash.where} is {tones}"
        f" but the {_START_NAME[request.tone_start]} pattern ({request.tones}) needs {clash.tone} there{hint}"
    )


def _line_ends(slots):
    """The slots that end a line: a character followed by a mark."""
    return [k for k in range(len(slots) - 1) if slots[k].han and not slots[k + 1].han]


def _line_end_steps(slots, resolved):
    """The slots where the model cannot know that a line ends: a ci's every line end (the tune sets each
    line's length), else the first line's end when regular verse has longer lines it could still be part of."""
    ends = _line_ends(slots)
    if resolved.ci is not None:
        return set(ends)
    first_break = next((k for k, slot in enumerate(slots) if not slot.han), len(slots))
    return {first_break - 1} if first_break < LONGEST_LINE else set()


def _shaped_steps(request, resolved, vocab, rows, out):
    """A form, template or ci: one step per slot, fixed characters forced, the others masked by tone and rhyme."""
    r = request
    slots = out.slots = poem_request.request_slots(r, resolved)
    _check_tones_fit(r, resolved, slots)
    scheme = poem_request.scheme_of(r)
    heard = scheme.table is None  # xinyun: free characters keep their heard readings
    limited = not r.allow_repeats  # a form, a ci or a template alike: a shaped poem, at most MAX_USES uses each
    fixed_rhymes = [slot for slot in slots if slot.rhyme and slot.fixed]
    excluded = frozenset(_token(vocab, slot.fixed, slot.source) for slot in fixed_rhymes)
    sensitive = [slot.han and (slot.rhyme or slot.tone != prosody_lib.EITHER) for slot in slots]
    line_ends = _line_end_steps(slots, resolved)
    last = set(_line_ends(slots))
    watched = last if any(slot.rhyme for slot in slots) else set()  # a rhyme may not repeat them
    for k, slot in enumerate(slots):
        if slot.fixed:
            token = _token(vocab, slot.fixed, slot.source)
            out.fixed[token] += slot.han
            # Not a rhyme step for the decoder: _initial_groups already keeps only the groups this
            # character rhymes in, and the free rhyme steps' rows exclude it. The dynamic mask would
            # refuse a fixed character with a second, 仄 reading (燕 yān/yàn), which no free rhyme
            # step may take but a begin, acrostic or template may fix (hypothesis found 春春春春燕).
            out.add(rows, ("tok", token), slot.where)
            continue
        need = 0
        if heard and k > 0 and sensitive[k - 1]:
            need |= prosody_lib.CHANGES_FIRST
        if heard and sensitive[k]:
            need |= prosody_lib.CHANGES_SECOND
        key = ("han", slot.tone, excluded if slot.rhyme else frozenset(), scheme.name)
        out.add(rows, key, slot.where, slot.rhyme, need, limited, line_end=k in line_ends,
                rhyme_watch=k in watched and not slot.rhyme, line_last=k in last)


def _exclusions(vp, need, row):
    """Most tokens of ``row`` that the pair mask of kinds ``need`` can remove after any one token.

    ``row`` is (V,) or (G, V); the answer is a number or one per group.
    """
    if not need:
        return 0 if row.ndim == 1 else np.zeros(row.shape[0], np.int64)
    padded = np.concatenate([row, np.zeros(row.shape[:-1] + (1,), bool)], axis=-1)
    hit = (vp.pair_kinds & need) > 0  # (V, K)
    if row.ndim == 1:
        return int((padded[vp.pair_tokens] & hit).sum(axis=1).max())
    return np.array([(g[vp.pair_tokens] & hit).sum(axis=1).max() for g in padded])


def _repeat_bound(steps, t, chars, size):
    """Most tokens of ``chars`` ((V,) or (G, V) bool) the no-repeat mask can exclude at step t.

    A token is out once it is used MAX_USES times; the fixed characters'
    uses are known, so the worst case spends the free steps before t first on
    tokens one use short, then on fresh ones (MAX_USES uses each). ``size``
    is ``chars.sum(axis=-1)``.
    """
    if not steps.no_repeat[t]:
        return 0 if chars.ndim == 1 else np.zeros(chars.shape[0], np.int64)
    budget = sum(steps.no_repeat[steps.content_start : t])
    # available[k]: tokens of chars k uses short (k = 0: already out), from the few fixed tokens
    available = [0] * (MAX_USES + 1)
    fresh = size
    for token, uses in steps.fixed.items():
        if uses:
            inside = chars[..., token].astype(np.int64)
            available[max(MAX_USES - uses, 0)] = available[max(MAX_USES - uses, 0)] + inside
            fresh = fresh - inside
    available[MAX_USES] = available[MAX_USES] + fresh
    out = available[0]
    for need in range(1, MAX_USES + 1):  # cheapest first
        take = np.minimum(available[need], budget // need)
        out, budget = out + take, budget - take * need
    return out


def _check_free_steps(steps, rows, vp):
    """Every free step keeps a token whatever the pair mask removes; True if the no-repeat mask can't empty it either."""
    guaranteed = True
    for t, (row_id, is_rhyme) in enumerate(zip(steps.rows, steps.rhyme)):
        if is_rhyme or not (steps.need[t] or steps.no_repeat[t]):
            continue
        size = rows.size(vp, row_id)
        lost = rows.exclusions(vp, steps.need[t], row_id)
        if size <= lost:
            raise PoetryError(f"too few characters in this vocabulary for step {t + 1} beside the neighbours it must avoid")
        guaranteed &= bool(size > lost + _repeat_bound(steps, t, rows.rows[row_id], size))
    return guaranteed


def _initial_groups(request, steps, rows, vp, book):
    """Per rhyme set s, the groups g of ``book`` such that every rhyme step of s keeps a usable character in g.

    Fixed rhyming characters must be distinct (across sets: no rhyme
    character twice in a poem) and share g (a regular poem's: 平). Each free
    rhyme step's static mask (which already excludes the fixed rhyming
    characters) must hold at least n_free + n_watch characters of g, n_free
    being the number of free rhyme steps of the poem and n_watch the free
    line ends before the step that are not rhymes: at most n_free - 1 rhymes
    and n_watch line ends are used before it, so the dynamic mask is never empty, and
    every group left in the decoder's group set is one of these. The pair
    mask may take more: as many as it can remove at that step are added.
    Returns ((S, G) groups, repeat_guaranteed): the groups that also survive
    the most the no-repeat mask can remove, if every set has some, else the
    others, not guaranteed.
    """
    slots = steps.slots or []
    n_sets = max((slot.rhyme for slot in slots), default=0)
    out = np.zeros((max(n_sets, 1), book.members.shape[0]), bool)
    if not n_sets:
        return out, True
    fixed = [slot for slot in slots if slot.rhyme and slot.fixed]
    seen = {}
    for slot in fixed:
        if slot.fixed in seen:
            raise PoetryError(
                f"rhyming lines may not repeat a character: {slot.fixed!r} ends {seen[slot.fixed]} and {slot.where}"
            )
        seen[slot.fixed] = slot.where
        if not request.cipai and not prosody_lib.char_rhymes(slot.fixed, prosody_lib.PING, vp.scheme):
            raise PoetryError(
                f"{slot.source} character {slot.fixed!r} at {slot.where} ends a rhyming line but has no 平 reading"
            )
    start = steps.content_start
    free = [start + k for k, slot in enumerate(slots) if slot.rhyme and not slot.fixed]
    strict = np.zeros_like(out)
    for s in range(1, n_sets + 1):
        chars = [slot.fixed for slot in fixed if slot.rhyme == s]
        shared = book.shared(chars)
        if not shared:
            raise PoetryError(f"the fixed rhyming characters {' '.join(chars)} share no rhyme group")
        out[s - 1, sorted(shared)] = True
        strict[s - 1] = out[s - 1]
        for t in (t for t in free if steps.rhyme[t] == s):
            size = rows.size(vp, steps.rows[t], book)
            need = len(free) + sum(steps.rhyme_watch[:t]) + rows.exclusions(vp, steps.need[t], steps.rows[t], book)
            out[s - 1] &= size >= need
            if strict[s - 1].any() and steps.no_repeat[t]:
                bound = _repeat_bound(steps, t, book.members & rows.rows[steps.rows[t]], size)
                strict[s - 1] &= size >= need + bound
            else:
                strict[s - 1] &= size >= need
        if not out[s - 1].any():
            total = sum(slot.rhyme == s for slot in slots)
            raise PoetryError(
                f"no rhyme group has enough usable characters for {total} rhyming lines"
                f"{f' of rhyme set {s}' if n_sets > 1 else ''} (distinct) under these constraints in this vocabulary"
            )
    return (strict, True) if strict.any(axis=1).all() else (out, False)


def plan(requests, vocab, model_config=None):
    """The :class:`DecodePlan` of a batch of requests; PoetryError if one is impossible.

    ``model_config`` is the model's ``ModelConfig`` (None: a model that reads
    no prompt): its ``condition`` says what its prompt holds and its
    ``prompt_bag`` whether it reads it as a prefix or as a bag.
    """
    if isinstance(requests, poem_request.PoemRequest):
        requests = [requests]
    requests = list(requests)
    if not requests:
        raise PoetryError("no poems requested")
    rows = _Rows(vocab)
    poems, schemes, books = _plan_each(requests, vocab, rows, model_config)
    return _stack(poems, schemes, books, rows, vocab)


def _plan_each(requests, vocab, rows, model_config):
    """Each request's steps, rhyme book, rhyme groups and whether its repeat limit is guaranteed; the schemes and
    rhyme books used."""
    condition = model_config.condition if model_config else "none"
    prompt_bag = bool(model_config and model_config.prompt_bag)
    poems, schemes, books = [], {}, {}
    for b, request in enumerate(requests):
        try:
            steps = _poem_steps(request, vocab, rows, condition, prompt_bag)
            scheme = poem_request.scheme_of(request)
            vp = schemes.get(scheme.name) or vocab_prosody.VocabProsody.build(vocab, scheme)
            book = (vocab_prosody.RhymeBook.of_ci(vocab, request.ci_rhyme) if request.cipai
                    else vocab_prosody.RhymeBook.of_scheme(vp))
            body_guaranteed = _check_free_steps(steps, rows, vp)
            groups, rhyme_guaranteed = _initial_groups(request, steps, rows, vp, book)
        except PoetryError as error:
            if len(requests) == 1:
                raise
            raise PoetryError(f"poem {b + 1}: {error}") from None
        schemes.setdefault(vp.scheme.name, vp)
        books.setdefault(book.name, book)
        poems.append((steps, book.name, groups, body_guaranteed and rhyme_guaranteed))
    return poems, schemes, books


def _stack(poems, schemes, books, rows, vocab):
    """The batch's DecodePlan from each poem's plan."""
    # One group table for the batch: each rhyme book's groups after the previous book's.
    offsets, members = {}, []
    for name, book in books.items():
        offsets[name] = sum(len(m) for m in members)
        members.append(book.members)
    bsz, n_groups = len(poems), sum(len(m) for m in members)
    n_sets = max(groups.shape[0] for _, _, groups, _ in poems)
    heard = schemes.get(prosody_lib.DEFAULT_SCHEME)  # only xinyun poems mask pairs
    pair_tokens = heard.pair_tokens if heard else np.full((len(vocab), 1), len(vocab), np.int32)
    pair_kinds = heard.pair_kinds if heard else np.zeros((len(vocab), 1), np.int32)
    t_max = max(len(steps.rows) for steps, *_ in poems)
    step_masks = np.zeros((bsz, t_max), np.int32)
    rhyme_set = np.zeros((bsz, t_max), np.int32)
    rhyme_watch = np.zeros((bsz, t_max), bool)
    context_need = np.zeros((bsz, t_max), np.int32)
    no_repeat = np.zeros((bsz, t_max), bool)
    line_end_step = np.zeros((bsz, t_max), bool)
    line_last = np.zeros((bsz, t_max), bool)
    initial_groups = np.zeros((bsz, n_sets, n_groups), bool)
    fixed_counts = np.zeros((bsz, len(vocab)), np.int8)
    keyword_tokens = np.zeros((bsz, len(vocab)), bool)
    title_weights = np.zeros((bsz, len(vocab)), np.float32)
    prompt_tokens = np.full((bsz, max(len(steps.prompt) for steps, *_ in poems)), PAD, np.int32)
    for b, (steps, name, groups, _) in enumerate(poems):
        n = len(steps.rows)
        step_masks[b, :n] = steps.rows
        rhyme_set[b, :n] = steps.rhyme
        rhyme_watch[b, :n] = steps.rhyme_watch
        context_need[b, :n] = steps.need
        no_repeat[b, :n] = steps.no_repeat
        line_end_step[b, :n] = steps.line_end
        line_last[b, :n] = steps.line_last
        initial_groups[b, : len(groups), offsets[name] : offsets[name] + groups.shape[1]] = groups
        for token, uses in steps.fixed.items():
            fixed_counts[b, token] = min(uses, 127)
        title_weights[b, list(steps.title)] = list(steps.title.values())
        keyword_tokens[b, steps.keywords] = True
        prompt_tokens[b, : len(steps.prompt)] = steps.prompt
    title_weights[keyword_tokens] = 0.0  # a keyword is pulled by the keyword bonus alone
    return DecodePlan(
        mask_table=np.stack(rows.rows),
        step_masks=step_masks,
        rhyme_set=rhyme_set,
        rhyme_watch=rhyme_watch,
        group_members=np.concatenate(members),
        initial_groups=initial_groups,
        lengths=np.array([len(steps.rows) for steps, *_ in poems], np.int32),
        content_start=np.array([steps.content_start for steps, *_ in poems], np.int32),
        context_need=context_need,
        pair_tokens=np.array(pair_tokens),
        pair_kinds=np.array(pair_kinds),
        no_repeat=no_repeat,
        fixed_counts=fixed_counts,
        keyword_tokens=keyword_tokens,
        title_weights=title_weights,
        repeat_guaranteed=np.array([guaranteed for *_, guaranteed in poems], bool),
        prompt_tokens=prompt_tokens,
        line_end_step=line_end_step,
        end_lift=line_ends.lift_vector(tuple(vocab.tokens)),
        line_last=line_last,
        free_poem=np.array([steps.free_poem for steps, *_ in poems], bool),
        couplets=np.array([steps.couplets for steps, *_ in poems], np.int32),
        line_chars=np.array([steps.line_chars for steps, *_ in poems], np.int32),
        han=next(iter(schemes.values())).han,
        stream=np.array([steps.stream for steps, *_ in poems], bool),
        rare_double=doubles.rare_vector(tuple(vocab.tokens)),
        couplet_end=np.isin(vocab.tokens, list(forms.COUPLET_END)),
    )
