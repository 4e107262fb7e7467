"""A poem request: what the user asked for, checked, and what it asks of each position.

:class:`PoemRequest` holds the fields (form, begin, acrostic, template, rhyme
and its scheme, tones, repeats, title, keywords). Two readers must read a
request the same way: ``constraints.plan``, which turns it into masks over a
model's vocabulary, and ``validator.check_poem``, which checks a finished
poem against it and must not depend on the masks. What they share is here,
and none of it knows a vocabulary. :func:`resolve_request` checks the fields
and their combinations and finds the poem's shape (the form, or the
template's), raising :class:`PoetryError` with one line naming the problem;
:func:`request_slots` lays out the content positions of a form or template
poem: each one's fixed character (template, begin, acrostic), 平仄 symbol,
and whether it ends a rhyming line.
"""

import dataclasses

from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.infra.fields import option
from poetry_rnn.verse import cipai as cipai_lib, forms, prosody as prosody_lib, tone_patterns

TONE_LEVELS = prosody_lib.TONE_LEVELS
TONE_STARTS = prosody_lib.TONE_CLASSES
SCHEMES = prosody_lib.SCHEME_NAMES
FREE_CHAR = "?"  # in templates: any Han character
# No character more than twice in a regular poem (绝句, 律诗): real 七绝 have a
# character three times in 2.5 % of poems, and a double is common in them
# (叠字 萧萧, and repeats across lines such as 明月 … 明月).
MAX_USES = 2


@dataclasses.dataclass(frozen=True)
class PoemShape:
    """What a poem must be, declared once for an ask (``options.PoemOptions``) and for each of its poems.

    Each field is an :func:`infra.fields.option`: its default and help text
    serve the command line, the Python API and the JSON API alike.
    """

    form: str = option(forms.FREE, "free, wujue (五绝), qijue (七绝), wulv (五律), qilv (七律).", choices=forms.FORM_NAMES)
    rhyme: bool = option(False, "Even lines end in one rhyme group of --scheme, 平, never repeated (needs --form); "
                         "--rhyme loose: 平水韵's 邻韵 may be mixed.")
    rhyme_loose: bool = option(False, "平水韵: neighbouring groups (邻韵: 东冬, 支微齐, ...) may be mixed (needs --rhyme).")
    first_line_rhymes: bool = option(False, "首句入韵: the first line rhymes too (rhyme and tone pattern).")
    scheme: str = option(prosody_lib.DEFAULT_SCHEME, "Rhyme book and tones: xinyun (中华新韵, as a reader today "
                         "hears the line) or pingshui (平水韵, the Tang rhyme book; 入声 is 仄).", choices=SCHEMES)
    allow_repeats: bool = option(False, "Regular forms, templates and ci: lift the limit of two uses per character.")
    tones: str = option("off", "平仄: off, loose (--tones alone: 2nd/4th/6th and last) or strict.", choices=TONE_LEVELS,
                        aliases={True: "loose", False: "off"})
    acrostic: str = option("", "藏头诗: one character at the head of each line, e.g. 春夏秋冬.")
    template: str = option("", "The whole poem with ? for free characters, e.g. 春风???，???月?。?????，?????。")
    title: str = option("", "Title to write to, e.g. 春望: its characters are pulled in by --title_bonus (any poem "
                        "model) and it is read as a prompt by models trained with --condition title or keywords (the "
                        "shipped one is).")
    max_len: int = option(120, "Free poems: most characters before the poem is cut.", minimum=1, maximum=1000)
    cipai: str = option("", "Song ci (宋词) to this tune (词牌), e.g. 浣溪沙: the tune's lines, punctuation and rhymes "
                        "(each rhyme set in one group of --ci_rhyme, in its tone); with --tones its 平仄 too "
                        "(loose: 2nd/4th/6th and last). 'list' shows the tunes.")
    ci_rhyme: str = option("cilin", "With --cipai: cilin (词林正韵, the Song poets' 19 部; tones by 平水韵, 入声 仄) or "
                           "xinyun (中华新韵: rhyme and tones as a reader today hears them).",
                           choices=cipai_lib.RHYME_BOOKS)


@dataclasses.dataclass(frozen=True)
class PoemRequest(PoemShape):
    """One poem to write: its ask's shape, and what is particular to this poem."""

    begin: str = ""                  # first characters of the poem (with a form or tune: of the first line)
    keywords: str = ""               # characters the poem is about (pulled in; a keywords model reads them)
    tone_start: str = TONE_STARTS[0]  # 平起 | 仄起, already chosen (an ask's "random" is drawn per poem)
    stop_at_eos: bool = True         # free mode: False = never end early (lyrics streams), exactly max_len
    couplets: int = 0                # a free poem: ends after this many couplets (。？！); 0: where the model ends it
    line_chars: int = 0              # a free poem: characters in every line; 0: the model's choice

    @property
    def rhymed(self):
        """The masks make the poem rhyme: rhyme was asked for, or it is a ci (which rhymes where its tune does)."""
        return self.rhyme or bool(self.cipai)


# --------------------------------------------------------------------------
# Reading a request


@dataclasses.dataclass(frozen=True)
class _Resolved:
    form: forms.Form | None   # the shape: the requested form, or the template's
    template: str
    ci: cipai_lib.CiPattern | None = None  # a ci's tune pattern (then form and template are None and "")

    @property
    def shaped(self):
        """Every position is laid out in advance (a form, a template or a tune), not a free poem."""
        return self.form is not None or bool(self.template) or self.ci is not None


def describe_form(form):
    return f"{form.chinese} ({form.lines} lines of {form.chars_per_line} characters)"


def _template_shape(template):
    """The template with '?' as a Han placeholder, for forms.classify."""
    return template.replace(FREE_CHAR, "一")


def resolve_request(request):
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
    for name in ("couplets", "line_chars"):
        value = getattr(r, name)
        if not isinstance(value, int) or value < 0:
            raise PoetryError(f"{name} must be a whole number >= 0, not {value!r}")
        if value and (r.cipai or r.template or r.form != forms.FREE):
            raise PoetryError(f"{name} shapes a free poem: a form, template or tune shapes its own")
    if r.cipai:
        return _resolve_ci(r)
    form = forms.FORMS.get(r.form)
    if r.template:
        for c in r.template:
            if not (c == FREE_CHAR or c in forms.PUNCTUATION or prosody_lib.is_han(c)):
                raise PoetryError(
                    f"template character {c!r} is not a Han character, '?' or one of {forms.PUNCTUATION}"
                )
        shape = forms.classify(_template_shape(r.template))
        if form is not None and shape != form.name:
            raise PoetryError(f"template does not have the shape of {describe_form(form)}: {r.template}")
        if form is None and shape is not None:
            form = forms.FORMS[shape]
    needs_form = [
        name
        for name, wanted in (("acrostic", r.acrostic), ("rhyme", r.rhyme), ("tones", r.tones != "off"))
        if wanted
    ]
    if needs_form and form is None:
        where = "a template with a regular shape" if r.template else "a form (wujue, qijue, wulv, qilv)"
        raise PoetryError(f"{' and '.join(needs_form)} {'needs' if len(needs_form) == 1 else 'need'} {where}")
    if r.first_line_rhymes and not (r.rhyme or r.tones != "off"):
        raise PoetryError("first_line_rhymes needs rhyme or tones")
    if form is not None:
        if r.begin and not r.template:
            if len(r.begin) > form.chars_per_line:
                raise PoetryError(f"begin {r.begin!r} is longer than a line of {describe_form(form)}")
            _require_han(r.begin, f"begin of a {form.chinese}")
        if r.acrostic:
            if len(r.acrostic) > form.lines:
                raise PoetryError(f"acrostic {r.acrostic!r} has more characters than {describe_form(form)} has lines")
            _require_han(r.acrostic, "acrostic characters")
    if r.template and len(r.begin) > len(r.template):
        raise PoetryError(f"begin {r.begin!r} is longer than the template")
    if not r.template and form is None and len(r.begin) > r.max_len:
        raise PoetryError(f"begin is longer than max_len ({r.max_len})")
    return _Resolved(form, r.template)


def _require_han(text, what):
    """PoetryError naming the first character of ``text`` that is not Han (``what``: how the message names it)."""
    bad = [c for c in text if not prosody_lib.is_han(c)]
    if bad:
        raise PoetryError(f"{what} must be Han characters, not {bad[0]!r}")


def _resolve_ci(r):
    """A ci request's checks: the tune is known, and nothing of regular verse is asked beside it."""
    if r.ci_rhyme not in cipai_lib.RHYME_BOOKS:
        raise PoetryError(f"ci_rhyme must be one of {', '.join(cipai_lib.RHYME_BOOKS)}, not {r.ci_rhyme!r}")
    clashing = [name for name, wanted in (("form", r.form != forms.FREE), ("template", r.template),
                                         ("first_line_rhymes", r.first_line_rhymes)) if wanted]
    if clashing:
        raise PoetryError(f"cipai fixes the shape and rhymes; leave out {' and '.join(clashing)}")
    pattern = cipai_lib.lookup(r.cipai)
    for what, text, most in (("begin", r.begin, pattern.lengths[0]), ("acrostic", r.acrostic, len(pattern.lengths))):
        if len(text) > most:
            raise PoetryError(f"{what} {text!r} is longer than {pattern.tune}'s "
                              f"{'first line' if what == 'begin' else 'lines'} ({most})")
        _require_han(text, f"{what} characters")
    return _Resolved(None, "", pattern)


# --------------------------------------------------------------------------
# Content positions (slots)


@dataclasses.dataclass
class _Slot:
    """One content step of a form or template poem."""

    where: str
    han: bool = True           # a character step (else punctuation)
    fixed: str = ""            # the forced character, if any
    source: str = ""           # who forced it: template, begin, acrostic
    tone: str = prosody_lib.EITHER
    rhyme: int = 0             # ends a rhyming line: its rhyme set, 1, 2, ... (a regular poem has one)


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


def request_slots(request, resolved):
    """The content steps of a form, template or ci request, fixed characters placed."""
    r, form = request, resolved.form
    if resolved.ci is not None:
        return _ci_slots(r, resolved.ci)
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
            pattern = tone_patterns.relax(
                tone_patterns.tone_pattern(form.chars_per_line, form.lines, r.tone_start, r.first_line_rhymes),
                r.tones,
            )
            for i, line in enumerate(pattern):
                for j, symbol in enumerate(line):
                    slots[i * width + j].tone = symbol
        if r.rhyme:
            for i in prosody_lib.rhyme_positions(form.lines, r.first_line_rhymes):
                slots[i * width + form.chars_per_line - 1].rhyme = 1
    return slots


def _ci_slots(r, pattern):
    """A ci's steps: each line of its tune, then the tune's mark; rhymes and (with tones) 平仄 from the pattern.

    A rhyming line's last character always takes the pattern's tone there
    (a 平 rhyme heard as 仄 would not rhyme), with tones or without.
    """
    sets = {letter: k + 1 for k, letter in enumerate(pattern.rhyme_sets())}
    tones = tone_patterns.relax(pattern.tones, r.tones)
    slots = []
    for i, (required, mark, letter) in enumerate(zip(tones, pattern.punctuation, pattern.rhymes)):
        line = [_Slot(f"line {i + 1}, character {j + 1}", tone=symbol) for j, symbol in enumerate(required)]
        if letter in sets:
            line[-1].rhyme, line[-1].tone = sets[letter], pattern.tones[i][-1]
        if i < len(r.acrostic):
            _fix(line[0], r.acrostic[i], "acrostic")
        slots += line + [_Slot(f"end of line {i + 1}", han=False, fixed=mark, source="tune")]
    for c, slot in zip(r.begin, slots):
        _fix(slot, c, "begin")
    return slots


def tone_name(tones):
    return "/".join(prosody_lib.TONE_SYMBOL[t] for t in prosody_lib.TONE_CLASSES if t in tones) or "of unknown tone"


def tune_of(request):
    """The tune pattern of a ci request (``cipai.CiPattern``), None for a poem."""
    return cipai_lib.lookup(request.cipai) if request.cipai else None


def tone_scheme(request):
    """The name of the scheme a request's tones are read by: its scheme, or for a ci its rhyme book's."""
    return cipai_lib.BOOK_TONE_SCHEME[request.ci_rhyme] if request.cipai else request.scheme


def scheme_of(request):
    """The request's RhymeScheme (its loose variant with rhyme_loose); a ci's: the one its tones are read by."""
    return prosody_lib.get_scheme(tone_scheme(request), request.rhyme_loose and not request.cipai)
