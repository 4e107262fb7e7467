"""A poem request -> per-step masks over the vocabulary, checked up front.

A :class:`PoemRequest` says what the user asked for (form, begin, acrostic,
template, rhyme, tones, title). :func:`plan` turns a batch of requests into a
:class:`DecodePlan`: for every poem and step, which tokens are allowed, which
steps are rhyme steps, and which rhyme groups the poem may use. It raises
:class:`PoetryError` (one line naming the problem) when a request can never be
met, so that a decoder following the plan's contract always finishes every
poem and every finished poem passes :func:`check_poem`, whatever the logits.

The decoder contract (``decode.py`` implements it in-graph)::

    group_set[b] = initial_groups[b];  used[b] = {}
    for t in range(lengths[b]):
        allowed = mask_table[step_masks[b, t]]
        if rhyme_step[b, t]:
            allowed &= any(group_set[b][:, None] & group_members, axis=0) & ~used[b]
        v = sample(logits, allowed)            # never empty (checked by plan)
        if v == EOS: stop
        if rhyme_step[b, t]: group_set[b] &= group_members[:, v]; used[b] |= {v}

:func:`check_poem` is the independent validator: it re-derives shape, fixed
characters, rhyme and tones from a finished poem with ``prosody``'s
per-character functions and never looks at masks.
"""

import dataclasses

import numpy as np

from poetry_rnn import forms, prosody as prosody_lib
from poetry_rnn.errors import PoetryError
from poetry_rnn.vocab import BOS, EOS, PAD, SEP, UNK

TONE_LEVELS = prosody_lib.TONE_LEVELS
TONE_STARTS = prosody_lib.TONE_CLASSES
FREE_CHAR = "?"  # in templates: any Han character


@dataclasses.dataclass(frozen=True)
class PoemRequest:
    form: str = "free"               # forms.FORM_NAMES
    begin: str = ""                  # first characters of the poem (with a form: of the first line)
    acrostic: str = ""               # 藏头: one character at the start of each line (needs a form)
    template: str = ""               # full content, punctuation included, '?' = any Han character
    rhyme: bool = False              # rhyming lines end in one group, 平, never repeated
    first_line_rhymes: bool = False  # 首句入韵 (rhyme and tone pattern)
    tones: str = "off"               # off | loose | strict
    tone_start: str = "ping"         # 平起 | 仄起: tone of the first line's 2nd character
    title: str = ""                  # title-conditioned models: BOS title SEP content EOS
    max_len: int = 200               # free mode: most content characters
    stop_at_eos: bool = True         # free mode: False = never end early (lyrics streams), exactly max_len


@dataclasses.dataclass
class DecodePlan:
    """Masks for a batch of B poems over T steps and a vocabulary of V tokens.

    mask_table:     bool (M, V), distinct allowed sets; row 0 is "EOS only"
    step_masks:     int32 (B, T), row of mask_table per step; steps at or past
                    lengths[b] point at row 0
    rhyme_step:     bool (B, T), apply the dynamic rhyme mask at this step
    group_members:  bool (G, V), tokens usable as the rhyme of group g
                    (Han characters with a 平 reading in g)
    initial_groups: bool (B, G), groups that can still complete every rhyme
                    step of poem b; all False for poems without rhyme
    lengths:        int32 (B,), steps of poem b including the final EOS step
    content_start:  int32 (B,), step where the content begins (after title
                    and SEP for title-conditioned models, else 0)
    """

    mask_table: np.ndarray
    step_masks: np.ndarray
    rhyme_step: np.ndarray
    group_members: np.ndarray
    initial_groups: np.ndarray
    lengths: np.ndarray
    content_start: np.ndarray


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


class _Rows:
    """Distinct mask rows, deduplicated by content; row 0 is EOS only."""

    def __init__(self, vocab, vp):
        self.vocab, self.vp = vocab, vp
        self.by_key, self.by_bytes, self.rows = {}, {}, []
        self.get(("tok", EOS), "the end of the poem")

    def _build(self, key):
        v = len(self.vocab)
        if key[0] == "tok":
            row = np.zeros(v, bool)
            row[key[1]] = True
        elif key[0] == "han":
            _, symbol, excluded = key
            row = self.vp.han.copy()
            if symbol == prosody_lib.P:
                row &= self.vp.ping
            elif symbol == prosody_lib.Z:
                row &= self.vp.ze
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
        if _tone_clash(_slots(dataclasses.replace(request, tone_start=start), resolved)) is None
    ]


def _tone_clash(slots):
    """The first fixed character whose tones miss its pattern symbol, or None."""
    for slot in slots:
        if slot.fixed and slot.tone != prosody_lib.EITHER and not prosody_lib.tone_ok(slot.fixed, slot.tone):
            return slot
    return None


def _token(vocab, c, source):
    if c not in vocab:
        raise PoetryError(f"{source} character {c!r} is not in the model's vocabulary")
    return vocab.id(c)


def _poem_steps(request, vocab, rows, title_conditioned):
    """(step rows, rhyme flags, content_start, slots or None) of one request."""
    r = request
    resolved = _resolve(r)
    steps, rhyme = [], []

    def add(key, where, is_rhyme=False):
        steps.append(rows.get(key, where))
        rhyme.append(is_rhyme)

    if r.title and not title_conditioned:
        raise PoetryError("a title needs a title-conditioned model; this model was trained without --condition title")
    for c in r.title:
        add(("tok", _token(vocab, c, "title")), "the title")
    if title_conditioned:
        add(("tok", SEP), "the end of the title")
    content_start = len(steps)

    if resolved.form is None and not resolved.template:  # free mode
        for c in r.begin:
            add(("tok", _token(vocab, c, "begin")), "the beginning")
        for k in range(len(r.begin), r.max_len):
            add(("free", k > 0 and r.stop_at_eos), f"character {k + 1}")
        add(("tok", EOS), "the end of the poem")
        return steps, rhyme, content_start, None

    slots = _slots(r, resolved)
    clash = _tone_clash(slots)
    if clash is not None:
        other = {"ping": "ze", "ze": "ping"}[r.tone_start]
        hint = ""
        if _tone_clash(_slots(dataclasses.replace(r, tone_start=other), resolved)) is None:
            hint = f" (tone_start={other!r}, {_START_NAME[other]}, fits)"
        tones = _tone_name(prosody_lib.char_tones(clash.fixed))
        raise PoetryError(
            f"{clash.source} character {clash.fixed!r} at {clash.where} is {tones}"
            f" but the {_START_NAME[r.tone_start]} pattern ({r.tones}) needs {clash.tone} there{hint}"
        )
    fixed_rhymes = [slot for slot in slots if slot.rhyme and slot.fixed]
    excluded = frozenset(_token(vocab, slot.fixed, slot.source) for slot in fixed_rhymes)
    for slot in slots:
        if slot.fixed:
            add(("tok", _token(vocab, slot.fixed, slot.source)), slot.where, slot.rhyme)
        else:
            add(("han", slot.tone, excluded if slot.rhyme else frozenset()), slot.where, slot.rhyme)
    add(("tok", EOS), "the end of the poem")
    return steps, rhyme, content_start, slots


def _initial_groups(request, slots, steps, start, rows, vp):
    """Rhyme groups g such that every rhyme step keeps a usable character in g.

    Fixed rhyming characters must be distinct, 平, and share g. Each free
    rhyme step's static mask (which already excludes the fixed rhyming
    characters) must hold at least n_free characters of g, n_free being the
    number of free rhyme steps: at most n_free - 1 of them are used before
    any free rhyme step, so the dynamic mask is never empty, and every group
    left in the decoder's group set is one of these.
    """
    out = np.zeros(vp.ping_rhymes.shape[1], bool)
    if not request.rhyme:
        return out
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
    free = [start + k for k, slot in enumerate(slots) if slot.rhyme and not slot.fixed]
    members = vp.group_members
    for row in {steps[t] for t in free}:
        out &= (members & rows.rows[row]).sum(axis=1) >= len(free)
    if not out.any():
        raise PoetryError(
            f"no rhyme group has enough usable characters for {len(free) + len(fixed)} rhyming lines"
            f" ({len(free)} to choose, 平, distinct) under these constraints in this vocabulary"
        )
    return out


def plan(requests, vocab, prosody=None, title_conditioned=False):
    """The :class:`DecodePlan` of a batch of requests; PoetryError if one is impossible."""
    if isinstance(requests, PoemRequest):
        requests = [requests]
    requests = list(requests)
    if not requests:
        raise PoetryError("no poems requested")
    vp = prosody or prosody_lib.VocabProsody.build(vocab)
    if vp.han.shape[0] != len(vocab):
        raise PoetryError("the prosody arrays were built for another vocabulary")
    rows = _Rows(vocab, vp)
    poems = []
    for b, request in enumerate(requests):
        try:
            steps, rhyme, start, slots = _poem_steps(request, vocab, rows, title_conditioned)
            groups = _initial_groups(request, slots or [], steps, start, rows, vp)
        except PoetryError as error:
            if len(requests) == 1:
                raise
            raise PoetryError(f"poem {b + 1}: {error}") from None
        poems.append((steps, rhyme, start, groups))
    bsz = len(poems)
    t_max = max(len(steps) for steps, *_ in poems)
    step_masks = np.zeros((bsz, t_max), np.int32)
    rhyme_step = np.zeros((bsz, t_max), bool)
    for b, (steps, rhyme, _, _) in enumerate(poems):
        step_masks[b, : len(steps)] = steps
        rhyme_step[b, : len(rhyme)] = rhyme
    return DecodePlan(
        mask_table=np.stack(rows.rows),
        step_masks=step_masks,
        rhyme_step=rhyme_step,
        group_members=np.array(vp.group_members),
        initial_groups=np.stack([groups for *_, groups in poems]),
        lengths=np.array([len(steps) for steps, *_ in poems], np.int32),
        content_start=np.array([start for _, _, start, _ in poems], np.int32),
    )


# --------------------------------------------------------------------------
# The independent validator


def check_poem(content, request, scheme=prosody_lib.DEFAULT_SCHEME):
    """Violations of ``request`` by a finished poem's ``content``; [] if none.

    Independent of the masks: it reads the finished string with forms.classify
    and prosody's per-character functions. Raises PoetryError only when the
    request itself is invalid.
    """
    r = request
    resolved = _resolve(r)
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
        problems += tone_problems(lines, pattern)
    return problems


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


def tone_problems(lines, pattern):
    """Positions whose character does not fit the 平仄 pattern ([] if all do)."""
    problems = []
    for i, (line, required_line) in enumerate(zip(lines, pattern)):
        chars = prosody_lib.line_chars(line)
        for j, (c, required) in enumerate(zip(chars, required_line)):
            if not prosody_lib.tone_ok(c, required):
                tones = _tone_name(prosody_lib.char_tones(c))
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
