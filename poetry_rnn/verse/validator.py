"""The independent validator: does a finished poem meet its request?

``constraints.plan`` builds masks so that every poem the decoder finishes
meets its request; this module checks that from the other side. It reads
only the finished string, re-deriving shape, fixed characters, rhyme and
tones with ``forms.classify`` and ``prosody``'s per-character functions (the
reader readings, or the 平水韵 table, of the request's scheme), and never
looks at masks, so a fault in the masks or the decoder shows here rather
than being repeated. It reads the request through ``poem_request``, as the
planner does, and does not import ``constraints``.

:func:`check_poem` lists a poem's violations; :func:`heard_ok` is the
stricter check of rhyme and 平仄 as each line is read whole;
:func:`rhyme_group_name` names the rhyme group a poem's rhyming lines share.
"""

import collections

from poetry_rnn.verse import cipai, forms, poem_request, prosody as prosody_lib, tone_patterns
from poetry_rnn.verse.poem_request import MAX_USES


def check_poem(content, request):
    """Violations of ``request`` by a finished poem's ``content``; [] if none.

    Independent of the masks: it reads the finished string with forms.classify
    and prosody's per-character functions (the reader readings, or the 平水韵
    table, of the request's scheme). Raises PoetryError only when the request
    itself is invalid.
    """
    r = request
    resolved = poem_request.resolve_request(r)
    scheme = poem_request.scheme_of(r)
    form, template = resolved.form, resolved.template
    problems = []
    if not content.startswith(r.begin):
        problems.append(f"begin: the poem starts {content[: len(r.begin)]!r}, not {r.begin!r}")
    if resolved.ci is not None:
        return problems + ci_problems(content, r, resolved)
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
            if want == poem_request.FREE_CHAR:
                if not prosody_lib.is_han(got):
                    problems.append(f"template: position {k + 1} is {got!r}, not a Han character")
            elif got != want:
                problems.append(f"template: position {k + 1} is {got!r}, not {want!r}")
    if not r.allow_repeats:
        problems += repeat_problems(content, poem_request.request_slots(r, resolved))
    if form is None:
        return problems
    if forms.classify(content) != form.name:
        problems.append(f"shape: not a {poem_request.describe_form(form)} ending ，。 alternately: {content!r}")
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
        pattern = tone_patterns.relax(
            tone_patterns.tone_pattern(form.chars_per_line, form.lines, r.tone_start, r.first_line_rhymes), r.tones
        )
        problems += tone_problems(lines, pattern, poem_request.tone_scheme(r))
    return problems


def ci_problems(content, request, resolved):
    """Violations of a ci request (``resolved``: its ``resolve_request``) by a finished ci: the tune's shape and
    marks, acrostic, rhymes, tones, repeats."""
    pattern = resolved.ci
    texts, marks = cipai.split_ci(content)
    if tuple(map(len, texts)) != pattern.lengths or "".join(marks) != pattern.punctuation:
        shape = "".join(f"{len(text)}{mark}" for text, mark in zip(texts, marks))
        return [f"shape: {shape} is not {pattern.tune}'s "
                f"{''.join(f'{n}{mark}' for n, mark in zip(pattern.lengths, pattern.punctuation))}"]
    problems = [f"shape: line {i + 1}, character {j + 1} is {c!r}, not a Han character"
                for i, text in enumerate(texts) for j, c in enumerate(text) if not prosody_lib.is_han(c)]
    problems += [f"acrostic: line {i + 1} starts with {texts[i][0]!r}, not {c!r}"
                 for i, c in enumerate(request.acrostic) if texts[i][0] != c]
    scheme = poem_request.tone_scheme(request)
    ends = [(i, texts[i][-1]) for i, letter in enumerate(pattern.rhymes) if letter != cipai.NO_RHYME]
    repeated = [c for c, n in collections.Counter(c for _, c in ends).items() if n > 1]
    if repeated:
        problems.append(f"rhyme: a rhyming character repeats: {' '.join(repeated)}")
    for letter, lines in pattern.rhyme_sets().items():
        chars = [texts[i][-1] for i in lines]
        if not cipai.shared_groups(chars, request.ci_rhyme):
            problems.append(f"rhyme: the line ends of rhyme set {letter} ({' '.join(chars)}) share no group")
    for i, c in ends:
        if not prosody_lib.tone_ok(c, pattern.tones[i][-1], scheme):
            problems.append(f"rhyme: line {i + 1} ends in {c!r}, the tune rhymes {pattern.tones[i][-1]} there")
    problems += tone_problems(texts, tone_patterns.relax(pattern.tones, request.tones), scheme)
    if not request.allow_repeats:
        problems += repeat_problems(content, poem_request.request_slots(request, resolved))
    return problems


def ci_rhyme_names(content, request):
    """The groups each rhyme set of a finished ci shares, e.g. '第七部' or '第十八部 第三部' (one per set)."""
    pattern = cipai.lookup(request.cipai)
    texts, _ = cipai.split_ci(content)
    names = cipai.group_names(request.ci_rhyme)
    sets = pattern.rhyme_sets().values()
    shared = [cipai.shared_groups([texts[i][-1:] for i in lines if i < len(texts)], request.ci_rhyme) for lines in sets]
    return " ".join("/".join(names[g] for g in sorted(groups)) or "?" for groups in shared) or None


def heard_ok(content, request):
    """The stricter check of a form poem: its rhyme (中华新韵) and 平仄 as each line is read whole.

    ``prosody.heard_rhyme_ok`` and ``heard_tones_ok``: the reading pypinyin
    gives each character in its line, not any reader reading. True when the
    request asks for neither.
    """
    form = poem_request.resolve_request(request).form
    if request.cipai:
        return True  # a ci's rhyme is its book's, not 中华新韵 heard line by line
    lines = [line[:-1] for line in forms.split_lines(content)]
    ok = not request.rhyme or prosody_lib.heard_rhyme_ok(lines, request.first_line_rhymes)
    if request.tones != "off" and form is not None:
        pattern = tone_patterns.relax(
            tone_patterns.tone_pattern(form.chars_per_line, form.lines, request.tone_start, request.first_line_rhymes),
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
                tones = poem_request.tone_name(prosody_lib.char_tones(c, scheme))
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
