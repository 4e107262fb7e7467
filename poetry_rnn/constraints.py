"""A poem request -> per-step masks over the vocabulary, checked up front.

A :class:`PoemRequest` says what the user asked for (form, begin, acrostic,
template, rhyme and its scheme, tones, repeats, title). :func:`plan` turns a
batch of requests into a :class:`DecodePlan`: for every poem and step, which
tokens are allowed, which steps are rhyme steps, which rhyme groups the poem
may use, which neighbours would change how a character is heard, and where
the no-repeat mask applies. It raises :class:`PoetryError` (one line naming
the problem) when a request can never be met, so that a decoder following
the plan's contract always finishes every poem and every finished poem passes
:func:`check_poem`, whatever the logits.

The decoder contract (``decode.py`` implements it in-graph)::

    group_set[b] = initial_groups[b];  used[b] = {};  count[b] = fixed_counts[b]
    for t in range(lengths[b]):
        allowed = mask_table[step_masks[b, t]]
        if context_need[b, t]:                 # keep prev and this character at their heard readings
            allowed &= ~{y : y = pair_tokens[prev, k], pair_kinds[prev, k] & context_need[b, t]}
        if rhyme_step[b, t]:
            allowed &= any(group_set[b][:, None] & group_members, axis=0) & ~used[b]
        if no_repeat[b, t] and any(allowed & (count[b] < MAX_USES)):
            allowed &= count[b] < MAX_USES     # always, where repeat_guaranteed[b]
        v = sample(logits, allowed)            # never empty (checked by plan)
        if v == EOS: stop
        if no_repeat[b, t]: count[b][v] += 1
        if rhyme_step[b, t]: group_set[b] &= group_members[:, v]; used[b] |= {v}

:func:`check_poem` is the independent validator: it re-derives shape, fixed
characters, rhyme and tones from a finished poem with ``prosody``'s
per-character functions and never looks at masks.
"""

import collections
import dataclasses

import numpy as np

from poetry_rnn import forms, prosody as prosody_lib, vocab as vocab_lib
from poetry_rnn.errors import PoetryError
from poetry_rnn.vocab import BOS, EOS, PAD, SEP, UNK

TONE_LEVELS = prosody_lib.TONE_LEVELS
TONE_STARTS = prosody_lib.TONE_CLASSES
SCHEMES = prosody_lib.SCHEME_NAMES
FREE_CHAR = "?"  # in templates: any Han character
# No character more than twice in a regular poem (绝句, 律诗): real 七绝 have a
# character three times in 2.5 % of poems, and a double is common in them
# (叠字 萧萧, and repeats across lines such as 明月 … 明月).
MAX_USES = 2


@dataclasses.dataclass(frozen=True)
class PoemRequest:
    form: str = "free"               # forms.FORM_NAMES
    begin: str = ""                  # first characters of the poem (with a form: of the first line)
    acrostic: str = ""               # 藏头: one character at the start of each line (needs a form)
    template: str = ""               # full content, punctuation included, '?' = any Han character
    rhyme: bool = False              # rhyming lines end in one group, 平, never repeated
    scheme: str = prosody_lib.DEFAULT_SCHEME  # rhyme book and tones: xinyun (中华新韵) | pingshui (平水韵)
    rhyme_loose: bool = False        # pingshui: 邻韵 may be mixed (东冬, 支微齐, …)
    allow_repeats: bool = False      # regular forms: lift the at-most-twice limit per character
    first_line_rhymes: bool = False  # 首句入韵 (rhyme and tone pattern)
    tones: str = "off"               # off | loose | strict
    tone_start: str = "ping"         # 平起 | 仄起: tone of the first line's 2nd character
    title: str = ""                  # conditioned models: the title in the prompt (vocab.prompt_fields)
    keywords: str = ""               # keywords-conditioned models: characters the poem is about
    max_len: int = 200               # free mode: most content characters
    stop_at_eos: bool = True         # free mode: False = never end early (lyrics streams), exactly max_len


@dataclasses.dataclass
class DecodePlan:
    """Masks for a batch of B poems over T steps and a vocabulary of V tokens.

    mask_table:     bool (M, V), distinct allowed sets; row 0 is "EOS only"
    step_masks:     int32 (B, T), row of mask_table per step; steps at or past
                    lengths[b] point at row 0
    rhyme_step:     bool (B, T), apply the dynamic rhyme mask at this step
    group_members:  bool (G, V), tokens usable as the rhyme of group g; the
                    groups of every scheme in the batch, one after another
    initial_groups: bool (B, G), groups that can still complete every rhyme
                    step of poem b; all False for poems without rhyme
    lengths:        int32 (B,), steps of poem b including the final EOS step
    content_start:  int32 (B,), step where the content begins (after title
                    for conditioned models, else 0)
    context_need:   int32 (B, T), pair kinds to mask after the previous token:
                    CHANGES_FIRST when the previous step's tone or rhyme is
                    enforced, CHANGES_SECOND when this step's is (free xinyun
                    steps only; 0 elsewhere)
    pair_tokens, pair_kinds: int32 (V, K), ``prosody.VocabProsody``'s pairs
    no_repeat:      bool (B, T), free character steps of a regular poem under
                    the at-most-MAX_USES limit
    fixed_counts:   int8 (B, V), uses of each token by the poem's fixed
                    characters (begin, acrostic, template), counted up front
    repeat_guaranteed: bool (B,), the no-repeat mask can never empty a step of
                    poem b (so it always applies); False where the vocabulary
                    is too small for that, and the mask steps aside rather
                    than leave nothing
    """

    mask_table: np.ndarray
    step_masks: np.ndarray
    rhyme_step: np.ndarray
    group_members: np.ndarray
    initial_groups: np.ndarray
    lengths: np.ndarray
    content_start: np.ndarray
    context_need: np.ndarray
    pair_tokens: np.ndarray
    pair_kinds: np.ndarray
    no_repeat: np.ndarray
    fixed_counts: np.ndarray
    repeat_guaranteed: np.ndarray


# --------------------------------------------------------------------------
# Reading a request


@dataclasses.dataclass(frozen=True)
class _Resolved:
    form: forms.Form | None   # the shape: the requested form, or the template's
    template: str


def _describe(form):
    return f"{form.chinese} ({form.lines} lines of {form.chars_per_line} characters)"


def _template_shape(template):
    """The template with '?' as a Han placeholder, for forms.classify."""
    return template.replace(FREE_CHAR, "一")


def _resolve(request):
    """Check a request's fields and combinations; return its shape."""
    r = request
    if r.form not in forms.FORM_NAMES:
        raise PoetryError(f"unknown form {r.form!r} (choose from {', '.join(forms.FORM_NAMES)})")
    if r.tones not in TONE_LEVELS:
        raise PoetryError(f"tones must be one of {', '.join(TONE_LEVELS)}, not {r.tones!r}")
    if r.scheme not in SCHEMES:
        raise PoetryError(f"unknown rhyme scheme {r.scheme!r} (choose from {', '.join(SCHEMES)})")
    if r.rhyme_loose and not r.rhyme:
        raise PoetryError("rhyme_loose needs rhyme")
    if r.tone_start not in TONE_STARTS:
        raise PoetryError(f"tone start must be 'ping' (平起) or 'ze' (仄起), not {r.tone_start!r}")
    if not isinstance(r.max_len, int) or r.max_len < 1:
        raise PoetryError(f"max_len must be a positive integer, not {r.max_len!r}")
    form = forms.FORMS.get(r.form)
    if r.template:
        for c in r.template:
            if not (c == FREE_CHAR or c in forms.PUNCTUATION or prosody_lib.is_han(c)):
                raise PoetryError(
                    f"template character {c!r} is not a Han character, '?' or one of {forms.PUNCTUATION}"
                )
        shape = forms.classify(_template_shape(r.template))
        if form is not None and shape != form.name:
            raise PoetryError(f"template does not have the shape of {_describe(form)}: {r.template}")
        if form is None and shape is not None:
            form = forms.FORMS[shape]
    needs_form = [
        name
        for name, wanted in (("acrostic", r.acrostic), ("rhyme", r.rhyme), ("tones", r.tones != "off"))
        if wanted
    ]
    if needs_form and form is None:
        where = "a template with a regular shape" if r.template else "a form (wujue, qijue, wulv, qilv)"
        raise PoetryError(f"{' and '.join(needs_form)} need {where}")
    if r.first_line_rhymes and not (r.rhyme or r.tones != "off"):
        raise PoetryError("first_line_rhymes needs rhyme or tones")
    if form is not None:
        if r.begin and not r.template:
            if len(r.begin) > form.chars_per_line:
                raise PoetryError(f"begin {r.begin!r} is longer than a line of {_describe(form)}")
            bad = [c for c in r.begin if not prosody_lib.is_han(c)]
            if bad:
                raise PoetryError(f"begin of a {form.chinese} must be Han characters, not {bad[0]!r}")
        if r.acrostic:
            if len(r.acrostic) > form.lines:
                raise PoetryError(f"acrostic {r.acrostic!r} has more characters than {_describe(form)} has lines")
            bad = [c for c in r.acrostic if not prosody_lib.is_han(c)]
            if bad:
                raise PoetryError(f"acrostic characters must be Han characters, not {bad[0]!r}")
    if r.template and len(r.begin) > len(r.template):
        raise PoetryError(f"begin {r.begin!r} is longer than the template")
    if not r.template and form is None and len(r.begin) > r.max_len:
        raise PoetryError(f"begin is longer than max_len ({r.max_len})")
    return _Resolved(form, r.template)


# --------------------------------------------------------------------------
# Steps


@dataclasses.dataclass
class _Slot:
    """One content step of a form or template poem."""

    where: str
    han: bool = True           # a character step (else punctuation)
    fixed: str = ""            # the forced character, if any
    source: str = ""           # who forced it: template, begin, acrostic
    tone: str = prosody_lib.EITHER
    rhyme: bool = False


def _fix(slot, c, source):
    if slot.fixed and slot.fixed != c:
        raise PoetryError(f"{source} wants {c!r} at {slot.where} but the {slot.source} has {slot.fixed!r}")
    if slot.fixed:
        return
    if slot.han and not prosody_lib.is_han(c):
        raise PoetryError(f"{source} character {c!r} at {slot.where} is not a Han character")
    if not slot.han:
        raise PoetryError(f"{source} wants {c!r} at {slot.where}, where the poem has punctuation")
    slot.fixed, slot.source = c, source


def _slots(request, resolved):
    """The content steps of a form or template request, fixed characters placed."""
    r, form = request, resolved.form
    if resolved.template:
        slots = []
        line, pos = 0, 0
        for c in resolved.template:
            where = f"line {line + 1}, character {pos + 1}" if form else f"template position {len(slots) + 1}"
            if c in forms.PUNCTUATION:
                slots.append(_Slot(where, han=False, fixed=c, source="template"))
                line, pos = line + 1, 0
            else:
                slots.append(_Slot(where, fixed="" if c == FREE_CHAR else c, source="template"))
                pos += 1
    else:
        slots = []
        for i in range(form.lines):
            for j in range(form.chars_per_line):
                slots.append(_Slot(f"line {i + 1}, character {j + 1}"))
            slots.append(_Slot(f"end of line {i + 1}", han=False, fixed=form.line_end(i), source="form"))
    for c, slot in zip(r.begin, slots):
        _fix(slot, c, "begin")
    if form is not None:
        width = form.chars_per_line + 1
        for i, c in enumerate(r.acrostic):
            _fix(slots[i * width], c, "acrostic")
        if r.tones != "off":
            pattern = prosody_lib.relax(
                prosody_lib.tone_pattern(form.chars_per_line, form.lines, r.tone_start, r.first_line_rhymes),
                r.tones,
            )
            for i, line in enumerate(pattern):
                for j, symbol in enumerate(line):
                    slots[i * width + j].tone = symbol
        if r.rhyme:
            for i in prosody_lib.rhyme_positions(form.lines, r.first_line_rhymes):
                slots[i * width + form.chars_per_line - 1].rhyme = True
    return slots


def _tone_name(tones):
    return "/".join(prosody_lib.TONE_SYMBOL[t] for t in prosody_lib.TONE_CLASSES if t in tones) or "of unknown tone"


def scheme_of(request):
    """The request's RhymeScheme (its loose variant with rhyme_loose)."""
    return prosody_lib.get_scheme(request.scheme, request.rhyme_loose)


class _Rows:
    """Distinct mask rows, deduplicated by content; row 0 is EOS only."""

    def __init__(self, vocab):
        self.vocab = vocab
        self.by_key, self.by_bytes, self.rows = {}, {}, []
        self.lost = {}  # (scheme, need, row, per group) -> _exclusions, the same for every poem of a batch
        self.get(("tok", EOS), "the end of the poem")

    def size(self, vp, index, per_group=False):
        """Tokens in row ``index`` (or of each group's members in it), cached."""
        key = (vp.scheme.name, "size", index, per_group)
        if key not in self.lost:
            row = self.rows[index]
            self.lost[key] = (vp.group_members & row).sum(axis=1) if per_group else int(row.sum())
        return self.lost[key]

    def exclusions(self, vp, need, index, per_group=False):
        """_exclusions of row ``index`` (or of each group's members in it), cached."""
        key = (vp.scheme.name, need, index, per_group)
        if key not in self.lost:
            row = self.rows[index]
            self.lost[key] = _exclusions(vp, need, vp.group_members & row if per_group else row)
        return self.lost[key]

    def _build(self, key):
        v = len(self.vocab)
        if key[0] == "tok":
            row = np.zeros(v, bool)
            row[key[1]] = True
        elif key[0] == "han":
            _, symbol, excluded, scheme = key
            vp = prosody_lib.VocabProsody.build(self.vocab, scheme)
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


def tone_starts_that_fit(request):
    """The tone starts ('ping', 'ze') whose pattern every fixed character fits.

    Fixed characters (begin, acrostic, template) may clash with one pattern
    and not the other; a writer choosing 平起/仄起 at random can pick among
    these. Both when tones are off or there is no form; raises PoetryError
    for an invalid request.
    """
    resolved = _resolve(request)
    if request.tones == "off" or resolved.form is None:
        return list(TONE_STARTS)
    return [
        start
        for start in TONE_STARTS
        if _tone_clash(_slots(dataclasses.replace(request, tone_start=start), resolved), request.scheme) is None
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
    rhyme: list = dataclasses.field(default_factory=list)
    need: list = dataclasses.field(default_factory=list)       # context_need
    no_repeat: list = dataclasses.field(default_factory=list)
    fixed: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # token -> uses
    content_start: int = 0
    slots: list = None


def _poem_steps(request, vocab, rows, condition):
    """The :class:`_Steps` of one request."""
    r = request
    resolved = _resolve(r)
    out = _Steps()

    def add(key, where, is_rhyme=False, need=0, no_repeat=False):
        out.rows.append(rows.get(key, where))
        out.rhyme.append(is_rhyme)
        out.need.append(need)
        out.no_repeat.append(no_repeat)

    if r.title and condition == "none":
        raise PoetryError("a title needs a model trained with --condition title or keywords; this one was trained "
                          "without")
    if r.keywords and condition != "keywords":
        raise PoetryError(f"keywords need a model trained with --condition keywords; this one was trained with "
                          f"--condition {condition}")
    for text, what in vocab_lib.prompt_fields(condition, r.title, r.keywords):
        for c in text:
            add(("tok", _token(vocab, c, what)), f"the {what}")
        add(("tok", SEP), f"the end of the {what}")
    out.content_start = len(out.rows)

    if resolved.form is None and not resolved.template:  # free mode
        for c in r.begin:
            add(("tok", _token(vocab, c, "begin")), "the beginning")
        for k in range(len(r.begin), r.max_len):
            add(("free", k > 0 and r.stop_at_eos), f"character {k + 1}")
        add(("tok", EOS), "the end of the poem")
        return out

    slots = out.slots = _slots(r, resolved)
    clash = _tone_clash(slots, r.scheme)
    if clash is not None:
        other = {"ping": "ze", "ze": "ping"}[r.tone_start]
        hint = ""
        if _tone_clash(_slots(dataclasses.replace(r, tone_start=other), resolved), r.scheme) is None:
            hint = f" (tone_start={other!r}, {_START_NAME[other]}, fits)"
        tones = _tone_name(prosody_lib.char_tones(clash.fixed, r.scheme))
        raise PoetryError(
            f"{clash.source} character {clash.fixed!r} at {clash.where} is {tones}"
            f" but the {_START_NAME[r.tone_start]} pattern ({r.tones}) needs {clash.tone} there{hint}"
        )
    scheme = scheme_of(r)
    heard = scheme.table is None  # xinyun: free characters keep their heard readings
    limited = resolved.form is not None and not r.allow_repeats
    fixed_rhymes = [slot for slot in slots if slot.rhyme and slot.fixed]
    excluded = frozenset(_token(vocab, slot.fixed, slot.source) for slot in fixed_rhymes)
    sensitive = [slot.han and (slot.rhyme or slot.tone != prosody_lib.EITHER) for slot in slots]
    for k, slot in enumerate(slots):
        if slot.fixed:
            token = _token(vocab, slot.fixed, slot.source)
            out.fixed[token] += slot.han
            add(("tok", token), slot.where, slot.rhyme)
            continue
        need = 0
        if heard and k > 0 and sensitive[k - 1]:
            need |= prosody_lib.CHANGES_FIRST
        if heard and sensitive[k]:
            need |= prosody_lib.CHANGES_SECOND
        key = ("han", slot.tone, excluded if slot.rhyme else frozenset(), scheme.name)
        add(key, slot.where, slot.rhyme, need, limited)
    add(("tok", EOS), "the end of the poem")
    return out


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


def _initial_groups(request, steps, rows, vp):
    """Rhyme groups g such that every rhyme step keeps a usable character in g.

    Fixed rhyming characters must be distinct, 平, and share g. Each free
    rhyme step's static mask (which already excludes the fixed rhyming
    characters) must hold at least n_free characters of g, n_free being the
    number of free rhyme steps: at most n_free - 1 of them are used before
    any free rhyme step, so the dynamic mask is never empty, and every group
    left in the decoder's group set is one of these. The pair mask may take
    more: as many as it can remove at that step are added. Returns (groups,
    repeat_guaranteed): the groups that also survive the most the no-repeat
    mask can remove, if there are any, else the others, not guaranteed.
    """
    out = np.zeros(vp.group_members.shape[0], bool)
    if not request.rhyme:
        return out, True
    slots = steps.slots
    fixed = [slot for slot in slots if slot.rhyme and slot.fixed]
    seen = {}
    for slot in fixed:
        if slot.fixed in seen:
            raise PoetryError(
                f"rhyming lines may not repeat a character: {slot.fixed!r} ends {seen[slot.fixed]} and {slot.where}"
            )
        seen[slot.fixed] = slot.where
        if not prosody_lib.char_rhymes(slot.fixed, prosody_lib.PING, vp.scheme):
            raise PoetryError(
                f"{slot.source} character {slot.fixed!r} at {slot.where} ends a rhyming line but has no 平 reading"
            )
    shared = prosody_lib.shared_rhymes([slot.fixed for slot in fixed], vp.scheme)
    if not shared:
        chars = " ".join(slot.fixed for slot in fixed)
        raise PoetryError(f"the fixed rhyming characters {chars} share no {vp.scheme.chinese} rhyme group")
    out[sorted(shared)] = True
    start = steps.content_start
    free = [start + k for k, slot in enumerate(slots) if slot.rhyme and not slot.fixed]
    strict = out.copy()
    for t in free:
        size = rows.size(vp, steps.rows[t], per_group=True)
        need = len(free) + rows.exclusions(vp, steps.need[t], steps.rows[t], per_group=True)
        out &= size >= need
        if strict.any() and steps.no_repeat[t]:
            strict &= size >= need + _repeat_bound(steps, t, vp.group_members & rows.rows[steps.rows[t]], size)
        else:
            strict &= size >= need
    if not out.any():
        raise PoetryError(
            f"no rhyme group has enough usable characters for {len(free) + len(fixed)} rhyming lines"
            f" ({len(free)} to choose, 平, distinct) under these constraints in this vocabulary"
        )
    return (strict, True) if strict.any() else (out, False)


def plan(requests, vocab, condition="none"):
    """The :class:`DecodePlan` of a batch of requests; PoetryError if one is impossible."""
    if isinstance(requests, PoemRequest):
        requests = [requests]
    requests = list(requests)
    if not requests:
        raise PoetryError("no poems requested")
    rows = _Rows(vocab)
    poems, schemes = [], {}
    for b, request in enumerate(requests):
        try:
            steps = _poem_steps(request, vocab, rows, condition)
            scheme = scheme_of(request)
            vp = schemes.get(scheme.name) or prosody_lib.VocabProsody.build(vocab, scheme)
            body_guaranteed = _check_free_steps(steps, rows, vp)
            groups, rhyme_guaranteed = _initial_groups(request, steps, rows, vp)
        except PoetryError as error:
            if len(requests) == 1:
                raise
            raise PoetryError(f"poem {b + 1}: {error}") from None
        schemes.setdefault(vp.scheme.name, vp)
        poems.append((steps, vp.scheme.name, groups, body_guaranteed and rhyme_guaranteed))
    # One group table for the batch: each scheme's groups after the previous scheme's.
    offsets, members = {}, []
    for name, vp in schemes.items():
        offsets[name] = sum(len(m) for m in members)
        members.append(vp.group_members)
    bsz, n_groups = len(poems), sum(len(m) for m in members)
    heard = schemes.get(prosody_lib.DEFAULT_SCHEME)  # only xinyun poems mask pairs
    pair_tokens = heard.pair_tokens if heard else np.full((len(vocab), 1), len(vocab), np.int32)
    pair_kinds = heard.pair_kinds if heard else np.zeros((len(vocab), 1), np.int32)
    t_max = max(len(steps.rows) for steps, *_ in poems)
    step_masks = np.zeros((bsz, t_max), np.int32)
    rhyme_step = np.zeros((bsz, t_max), bool)
    context_need = np.zeros((bsz, t_max), np.int32)
    no_repeat = np.zeros((bsz, t_max), bool)
    initial_groups = np.zeros((bsz, n_groups), bool)
    fixed_counts = np.zeros((bsz, len(vocab)), np.int8)
    for b, (steps, name, groups, _) in enumerate(poems):
        n = len(steps.rows)
        step_masks[b, :n] = steps.rows
        rhyme_step[b, :n] = steps.rhyme
        context_need[b, :n] = steps.need
        no_repeat[b, :n] = steps.no_repeat
        initial_groups[b, offsets[name] : offsets[name] + len(groups)] = groups
        for token, uses in steps.fixed.items():
            fixed_counts[b, token] = min(uses, 127)
    return DecodePlan(
        mask_table=np.stack(rows.rows),
        step_masks=step_masks,
        rhyme_step=rhyme_step,
        group_members=np.concatenate(members),
        initial_groups=initial_groups,
        lengths=np.array([len(steps.rows) for steps, *_ in poems], np.int32),
        content_start=np.array([steps.content_start for steps, *_ in poems], np.int32),
        context_need=context_need,
        pair_tokens=np.array(pair_tokens),
        pair_kinds=np.array(pair_kinds),
        no_repeat=no_repeat,
        fixed_counts=fixed_counts,
        repeat_guaranteed=np.array([guaranteed for *_, guaranteed in poems], bool),
    )


# --------------------------------------------------------------------------
# The independent validator


def check_poem(content, request):
    """Violations of ``request`` by a finished poem's ``content``; [] if none.

    Independent of the masks: it reads the finished string with forms.classify
    and prosody's per-character functions (the reader readings, or the 平水韵
    table, of the request's scheme). Raises PoetryError only when the request
    itself is invalid.
    """
    r = request
    resolved = _resolve(r)
    scheme = scheme_of(r)
    form, template = resolved.form, resolved.template
    problems = []
    if not content.startswith(r.begin):
        problems.append(f"begin: the poem starts {content[: len(r.begin)]!r}, not {r.begin!r}")
    if form is None and not template:
        if not content:
            problems.append("free: the poem is empty")
        if len(content) > r.max_len:
            problems.append(f"free: {len(content)} characters, more than max_len {r.max_len}")
        elif not r.stop_at_eos and len(content) < r.max_len:
            problems.append(f"free: ended after {len(content)} characters, before max_len {r.max_len}")
        return problems
    if template:
        if len(content) != len(template):
            problems.append(f"template: {len(content)} characters, the template has {len(template)}")
        for k, (want, got) in enumerate(zip(template, content)):
            if want == FREE_CHAR:
                if not prosody_lib.is_han(got):
                    problems.append(f"template: position {k + 1} is {got!r}, not a Han character")
            elif got != want:
                problems.append(f"template: position {k + 1} is {got!r}, not {want!r}")
    if form is None:
        return problems
    if forms.classify(content) != form.name:
        problems.append(f"shape: not a {_describe(form)} ending ，。 alternately: {content!r}")
        return problems
    lines = [line[:-1] for line in forms.split_lines(content)]
    for i, line in enumerate(lines):
        for j, c in enumerate(line):
            if not prosody_lib.is_han(c):
                problems.append(f"shape: line {i + 1}, character {j + 1} is {c!r}, not a Han character")
    for i, c in enumerate(r.acrostic):
        if lines[i][0] != c:
            problems.append(f"acrostic: line {i + 1} starts with {lines[i][0]!r}, not {c!r}")
    if r.rhyme:
        problems += rhyme_problems(lines, r.first_line_rhymes, scheme)
    if r.tones != "off":
        pattern = prosody_lib.relax(
            prosody_lib.tone_pattern(form.chars_per_line, form.lines, r.tone_start, r.first_line_rhymes), r.tones
        )
        problems += tone_problems(lines, pattern, r.scheme)
    if not r.allow_repeats:
        problems += repeat_problems(content, _slots(r, resolved))
    return problems


def heard_ok(content, request):
    """The stricter check of a form poem: its rhyme (中华新韵) and 平仄 as each line is read whole.

    ``prosody.heard_rhyme_ok`` and ``heard_tones_ok``: the reading pypinyin
    gives each character in its line, not any reader reading. True when the
    request asks for neither.
    """
    form = _resolve(request).form
    lines = [line[:-1] for line in forms.split_lines(content)]
    ok = not request.rhyme or prosody_lib.heard_rhyme_ok(lines, request.first_line_rhymes)
    if request.tones != "off" and form is not None:
        pattern = prosody_lib.relax(
            prosody_lib.tone_pattern(form.chars_per_line, form.lines, request.tone_start, request.first_line_rhymes),
            request.tones,
        )
        ok = ok and prosody_lib.heard_tones_ok(lines, pattern)
    return bool(ok)


def repeat_problems(content, slots):
    """Characters used more than MAX_USES times (or than the fixed characters use them)."""
    fixed = collections.Counter(slot.fixed for slot in slots if slot.fixed and slot.han)
    counts = collections.Counter(c for c in content if prosody_lib.is_han(c))
    return [
        f"repeats: {c!r} appears {n} times (at most {max(MAX_USES, fixed[c])})"
        for c, n in counts.items()
        if n > max(MAX_USES, fixed[c])
    ]


def rhyme_problems(lines, first_line_rhymes=False, scheme=prosody_lib.DEFAULT_SCHEME):
    """Why the rhyming lines' last characters do not rhyme ([] if they do)."""
    positions = prosody_lib.rhyme_positions(len(lines), first_line_rhymes)
    chars = prosody_lib.rhyme_chars(lines, first_line_rhymes)
    problems = []
    for i, c in zip(positions, chars):
        if not prosody_lib.char_rhymes(c, prosody_lib.PING, scheme):
            problems.append(f"rhyme: line {i + 1} ends in {c!r}, which has no 平 rhyme reading")
    if len(set(chars)) != len(chars):
        problems.append(f"rhyme: a rhyming character repeats: {' '.join(chars)}")
    if not problems and not prosody_lib.shared_rhymes(chars, scheme):
        names = prosody_lib.get_scheme(scheme).groups
        groups = ", ".join(
            f"{c} {'/'.join(names[g] for g in sorted(prosody_lib.char_rhymes(c, prosody_lib.PING, scheme)))}"
            for c in chars
        )
        problems.append(f"rhyme: the rhyming characters share no group ({groups})")
    return problems


def tone_problems(lines, pattern, scheme=prosody_lib.DEFAULT_SCHEME):
    """Positions whose character does not fit the 平仄 pattern ([] if all do)."""
    problems = []
    for i, (line, required_line) in enumerate(zip(lines, pattern)):
        chars = prosody_lib.line_chars(line)
        for j, (c, required) in enumerate(zip(chars, required_line)):
            if not prosody_lib.tone_ok(c, required, scheme):
                tones = _tone_name(prosody_lib.char_tones(c, scheme))
                problems.append(
                    f"tones: line {i + 1}, character {j + 1} {c!r} is {tones}, the pattern needs {required}"
                )
    return problems


def rhyme_group_name(content, first_line_rhymes=False, scheme=prosody_lib.DEFAULT_SCHEME):
    """The rhyme group shared by a poem's rhyming lines, e.g. '十一庚'; None if none.

    Several names joined by '/' when the rhyming characters share more than
    one group (heteronyms), e.g. '一麻/十四姑'.
    """
    lines = forms.split_lines(content)
    chars = prosody_lib.rhyme_chars(lines, first_line_rhymes)
    if not chars or not all(chars):
        return None
    names = prosody_lib.get_scheme(scheme).groups
    shared = prosody_lib.shared_rhymes(chars, scheme)
    return "/".join(names[g] for g in sorted(shared)) or None
