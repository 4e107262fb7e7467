"""Sample-quality measures, the same for generated and for real poems.

Perplexity says how well a model predicts real poems; these say what its
samples look like: do they keep the shape of regular verse, do they copy the
training corpus, do they repeat themselves, how varied are they. Each takes
poem contents (``"白日依山尽，黄河入海流。欲穷千里目，更上一层楼。"``);
``summarize`` gives them all as one dict, so an evaluation report can print
the same measures for samples and for held-out real poems side by side (the
real poems show what "normal" is: Tang poets repeat characters too).
``Cooccurrence`` and ``related_share`` say whether a poem written to a title
or keywords writes what poets write beside them.

Whether a sample ended with EOS is the decoder's business: pass
``ended=False`` to ``form_valid`` for one that ran out of steps, or pass only
finished samples.
"""

import collections
import math

from poetry_rnn.verse import forms
from poetry_rnn.infra.errors import PoetryError

LINE_LENGTHS = (5, 7)


def consistent_line_length(content):
    """True when every line has the same number of characters, 5 or 7.

    Punctuation is not counted, and it is not checked: that is
    ``form_valid``'s job.
    """
    lengths = {len(text) for text in forms.line_texts(content)}
    return len(lengths) == 1 and lengths.pop() in LINE_LENGTHS


def form_valid(content, form=None, *, ended=True):
    """True when ``content`` has the shape of regular verse.

    Without a form (or with ``forms.FREE``, which asks for no particular
    shape) any number of couplets will do: lines of 5 or 7 characters
    throughout, ending ，。，。… and so on with 。 last. With a form name the
    poem must have exactly that form's shape (``forms.classify``). A sample
    that did not end with EOS (``ended=False``) is never valid.
    """
    if not ended:
        return False
    if form is not None and form != forms.FREE:
        if form not in forms.FORMS:
            raise PoetryError(f"unknown form {form!r}; choose from {', '.join(forms.FORM_NAMES)}")
        return forms.classify(content) == form
    lines = forms.split_lines(content)
    return (
        len(lines) % 2 == 0
        and consistent_line_length(content)
        and all(line[-1] == "，。"[i % 2] for i, line in enumerate(lines))
    )


class TrainingIndex:
    """The training corpus's poems and 5/7-character lines, as sets.

    Built once (about 50,000 poems) and shared by every ``novelty`` call.
    """

    def __init__(self, training_poems):
        self.poems = set()
        self.lines = set()
        for content in training_poems:
            self.poems.add(content)
            self.lines.update(text for text in forms.line_texts(content) if len(text) in LINE_LENGTHS)


def shares_a_line(content, index):
    """True when a 5/7-character line of ``content`` is verbatim a line of a training poem.

    The corpus holds the same poem under two authors, or one line quoted in
    another poem; a held-out poem like that partly measures memory, not
    generalisation, so ``evaluate`` also scores the held-out poems without one.
    """
    return any(text in index.lines for text in forms.line_texts(content) if len(text) in LINE_LENGTHS)


def novelty(poems, index):
    """How much of ``poems`` is copied from the training corpus.

    ``copied_lines``: share of the poems' 5- and 7-character lines (text
    without punctuation) that occur verbatim as a line of a training poem.
    ``copied_poems``: share of poems whose whole content is a training
    poem's. Either is NaN when there is nothing to count.
    """
    lines = [text for content in poems for text in forms.line_texts(content) if len(text) in LINE_LENGTHS]
    return {
        "copied_lines": _share(sum(text in index.lines for text in lines), len(lines)),
        "copied_poems": _share(sum(content in index.poems for content in poems), len(poems)),
    }


class Cooccurrence:
    """Which characters the training poems write beside a given one: a model-free measure of topic.

    A poem asked for 江 may follow it without writing 江: 舟, 帆, 岸 and 潮
    say the same. For a character k, its related characters are the
    ``top`` characters with the largest log-likelihood score
    ``n * log(n / expected)``, where ``n`` is the number of training poems
    holding both and ``expected`` the number if the two were independent,
    among those at least ``min_lift`` times likelier beside k than anywhere.
    The lift bar drops characters common everywhere (风, 人); the score then
    prefers well-attested pairs to rare characters met beside k once or
    twice. On the Tang corpus 江 gives 南舟楚帆湖岸船…, 别 离泪恨送惜赠…,
    酒 醉杯诗饮醒歌…. Characters count once per poem, and only
    characters proper (as in ``repetition``).
    """

    def __init__(self, training_poems, top=30, min_lift=2.0):
        self.top, self.min_lift = top, min_lift
        self.ids = {}  # char -> id, in order of first appearance
        self.poem_ids = [sorted({self.ids.setdefault(c, len(self.ids)) for c in content if c.isalpha()})
                         for content in training_poems]
        self.chars = list(self.ids)
        self.poems_with = collections.defaultdict(list)  # char id -> indices of the poems holding it
        for poem, present in enumerate(self.poem_ids):
            for i in present:
                self.poems_with[i].append(poem)
        self.cache = {}

    def related(self, c):
        """The set of characters related to ``c`` (empty for a character no training poem holds)."""
        if c not in self.cache:
            self.cache[c] = self._related(c)
        return self.cache[c]

    def _related(self, c):
        k = self.ids.get(c)
        if k is None:
            return frozenset()
        counts = collections.Counter(i for poem in self.poems_with[k] for i in self.poem_ids[poem])
        with_k, poems = len(self.poems_with[k]), len(self.poem_ids)
        scores = []
        for i, n in counts.items():
            expected = with_k * len(self.poems_with[i]) / poems
            if i != k and n >= self.min_lift * expected:
                scores.append((n * math.log(n / expected), self.chars[i]))
        return frozenset(char for _, char in sorted(scores, reverse=True)[: self.top])


def related_share(content, prompt, table):
    """Share of the poem's distinct characters, other than the prompt's own, related to a prompt character.

    ``prompt`` is the title or keywords (a string); ``table`` a
    :class:`Cooccurrence`. The prompt's own characters are left out on both
    sides, so writing the keyword itself (what a logit bonus does) scores
    nothing here: only what is written beside it. NaN when the poem has no
    other character or the prompt's characters relate to none.
    """
    prompt_chars = set(prompt)
    related = set().union(*(table.related(c) for c in prompt_chars)) - prompt_chars
    own = {c for c in content if c.isalpha()} - prompt_chars
    if not related:
        return math.nan
    return _share(len(own & related), len(own))


def repetition(poems):
    """Share of poems in which some character occurs three or more times.

    Only characters proper count (``str.isalpha``: Han characters), not
    punctuation, which a regular poem repeats by design, nor the □ that
    stands for an unknown character.
    """
    return _share(sum(_repeats(content) for content in poems), len(poems))


def _repeats(content):
    counts = collections.Counter(c for c in content if c.isalpha())
    return any(n >= 3 for n in counts.values())


def couplet_repetition(poems):
    """Share of couplets (up to 。？！; a ci's sentences) that say some character twice, a double such as 萧萧
    excepted (``forms.couplet_repeats``): Tang poets seldom do, and the decoder's ``CoupletRepeat`` pulls
    against it."""
    flags = [flag for content in poems for flag in forms.couplet_repeats(content)]
    return _share(sum(flags), len(flags))


def line_end_repetition(poems):
    """Share of poems in which some line ends on a character an earlier line ended on
    (``forms.line_end_repeats``): the decoder's ``LineEndRepeat`` pulls against it."""
    return _share(sum(map(forms.line_end_repeats, poems)), len(poems))


def distinct_2(poems):
    """Distinct character bigrams / all character bigrams, over all poems.

    Bigrams are pairs of neighbouring characters within a line: punctuation
    is fixed by the form, and a pair across a line break is not a phrase, so
    neither is counted; a 5-character line gives 4 bigrams. Distinct is over
    the whole collection, so a model that writes the same phrases in every
    poem scores low even when each poem varies.
    """
    pairs = [pair for content in poems for pair in forms.bigrams(content)]
    return _share(len(set(pairs)), len(pairs))


def summarize(poems, index, extra_measures=None):
    """All the measures above for ``poems``, as a dict of floats (plus the count).

    Shares of poems: ``consistent_length`` and ``form_valid`` (without a
    form; pass only finished samples), ``copied_poems``, ``repetition``;
    ``copied_lines`` is a share of lines, ``couplet_repetition`` of
    couplets and ``distinct_2`` a ratio of bigrams. ``extra_measures`` maps
    more names to functions of the list of poems returning a float: this is
    where the evaluator adds rhyme and tone
    agreement from ``prosody`` and ``tone_patterns``, which this module does not import.
    """
    poems = list(poems)
    summary = {
        "poems": len(poems),
        "consistent_length": _share(sum(consistent_line_length(p) for p in poems), len(poems)),
        "form_valid": _share(sum(form_valid(p) for p in poems), len(poems)),
        **novelty(poems, index),
        "repetition": repetition(poems),
        "couplet_repetition": couplet_repetition(poems),
        "distinct_2": distinct_2(poems),
    }
    for name, measure in (extra_measures or {}).items():
        if name in summary:
            raise PoetryError(f"measure {name!r} is already in the summary")
        summary[name] = float(measure(poems))
    return summary


def _share(part, whole):
    """part / whole as a float, NaN when there is nothing to count."""
    return part / whole if whole else math.nan
