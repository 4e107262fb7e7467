"""Every option of writing a poem, once: what to write (:class:`PoemOptions`) and how to sample (:class:`SamplingOptions`).

``write``, ``evaluate``, ``compare``, the Python facade, the server and
training-time samples all read these dataclasses; each field is declared
once with :func:`infra.fields.option` (default, help, range), and the
command-line flags, the keyword arguments and the JSON fields are made from
it. The fields one poem shares with its ask are declared once, in
``verse.poem_request.PoemShape``; which model writes, and in what
arithmetic, in :class:`ModelOptions`. This module imports no TensorFlow.
"""

import dataclasses

from poetry_rnn.infra import hardware
from poetry_rnn.infra.errors import OptionError, PoetryError
from poetry_rnn.infra.fields import option, validate
from poetry_rnn.verse import cipai, forms, poem_request, prosody


PRECISIONS = ("auto", "float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """Which model writes, and in what arithmetic: ``write``'s and ``serve``'s flags, ``poetry_rnn.load``'s arguments."""

    model_dir: str = option(None, "Model directory (default: the shipped model).")
    precision: str = option(
        "auto", "The decoder's arithmetic. bfloat16 weights are half the bytes each character reads: one 七绝 "
        "0.87x the float32 time on an AVX-512 BF16 CPU, emulated (slower) on others. auto: bfloat16 where the CPU "
        "computes it natively (AVX-512 BF16, AMX) and there is no GPU, else float32. A seed writes the same poems "
        "again at the same precision.", choices=PRECISIONS)

    def __post_init__(self):
        validate(self)

    def resolved(self):
        """The Keras dtype policy the model computes under on this machine."""
        if self.precision != "auto":
            return self.precision
        return "bfloat16" if hardware.bf16_is_native() else "float32"


@dataclasses.dataclass(frozen=True)
class SamplingOptions:
    """How each character is drawn from the model's distribution, and how drafts are ranked.

    The temperature was chosen for the shipped model (stage 11) on the
    realism frontier (``benchmarks/realism.py``, 1,000 poems per form in
    one ask, two seeds, docs/results.md), with its own critic at weight
    0.2: at 0.8 the written poems' 5-gram perplexity is 1.05x (七绝) and
    1.20x (五律) the real poems', and the two real-vs-generated judges
    score 0.56/0.54 (七绝), 0.60/0.58 (五律) and 0.68/0.69 (free poems).
    At 0.75 they were 0.93x and 1.08x with judges 0.57/0.55 and 0.65/0.61,
    at 0.85 1.18x and 1.34x with 0.54/0.53 and 0.58/0.57: a sharper model
    than the one before it (whose 0.75 this replaced) wants a little more
    heat, and 五律 pay for it with strangeness first. Critic weight 0.4 at
    0.8 gave no clearer gain and a 七绝 ratio past 1.10. Typical sampling
    at 0.95 came later, for the shipped stage 12: it brings 五律 from 1.17x
    into the band (1.08x / 1.09x at two seeds), 七绝 and free poems to
    0.94-0.99x, and the judges' means of two seeds move by -1.1 to +2.0
    points, inside their spread between seeds. The over-use penalty (1)
    came next, and the temperature went back to 0.75 with it: at 0.8 the
    penalty took 五律's 5-gram ratio to 1.24x and free poems' to 1.12x
    (distinct-2 3 points above real); at 0.75 they are 1.11x and 0.97x,
    七绝 0.93x, with judges (means of two seeds) 七绝 0.49/0.54, 五律
    0.59/0.55 and free 0.60/0.59, against 0.55/0.52, 0.61/0.57 and
    0.59/0.61 before it (docs/results.md). The rest were
    measured on 1,000 poems with rhyme in one ask against
    the real poems of the validation split (``benchmarks/poem_quality.py``):
    top-p 0.9, the best of 8 drafts with a novelty weight
    of 2 and a reuse penalty of 1.5 score 1.06x the real 七绝's 5-gram
    perplexity (166.4 against 157.0) with distinct-2 90.1 % (real 92.4 %),
    and 1.13x for 五律 (166.4 against 147.0) with 88.6 % (real 91.6 %); they
    copy no line. Before the reuse penalty the defaults (temperature 0.9)
    scored 1.13x / 86.9 % and 1.25x / 84.8 % (plain sampling at 0.8: 1.52x).
    The novelty term and the penalty only see the poems of one ask; a poem
    written alone is ranked by log-probability (docs/results.md has the
    settings tried).
    """

    temperature: float = option(0.75, "Sampling temperature; 0 = greedy.", minimum=0, neutral=1.0)
    free_heat: float = option(
        1.125, "Free poems (no form, template or tune) sample at --temperature times this (0.84 at the defaults): "
        "no form's masks keep them off the model's likeliest characters, and at 0.8 they were more predictable "
        "than real verse (docs/results.md; 1 = as --temperature).", minimum=0, maximum=100, neutral=1.0)
    top_k: int = option(0, "Sample among the k most likely characters (0 = all).", minimum=0, maximum=1_000_000,
                        neutral=0)
    top_p: float = option(0.9, "Nucleus sampling: the smallest set of characters with this much probability (1 = off).",
                          above=0, maximum=1, neutral=1.0)
    min_p: float = option(0.0, "Min-p sampling: keep the characters at least this share as likely as the most "
                          "likely one (0 = off).", minimum=0, maximum=1, neutral=0.0)
    typical_p: float = option(
        0.95, "Locally typical sampling: keep the characters whose surprisal is nearest the step's entropy, as few "
        "as hold this much probability (1 = off). At 0.95 the 5-gram ratio of 1,000 五律 falls from 1.17x to "
        "1.08-1.09x real, 七绝 and free poems' to 0.94-0.99x, and the judges cannot tell it from 1 "
        "(docs/results.md).", above=0, maximum=1, neutral=1.0)
    best_of: int = option(8, "Draft this many candidates per poem and keep the best (see --novelty_weight).",
                          minimum=1, maximum=64, neutral=1)
    novelty_weight: float = option(
        2.0, "Ranking drafts: minus this times the share of a draft's bigrams already used by the poems chosen "
        "before it in the same batch (0 = rank by mean log-probability alone).", minimum=0, neutral=0.0)
    critic_weight: float = option(
        0.2, "Ranking drafts: plus this times the critic's log-odds that a draft is a real poem, when the model "
        "carries a critic (python -m poetry_rnn.critic; 0 = no critic).", minimum=0, maximum=100, neutral=0.0)
    forcing_weight: float = option(
        1.0, "Ranking drafts: minus this times the nats per character the masks (form, rhyme, tones, shape) took "
        "from the model's own choice, so a draft whose lines were heading for their rhymes wins over one a "
        "rhyme was forced onto. At 1, 1,000 五律's 5-gram ratio falls from 1.11x to 1.10x real and the "
        "linear judge from 0.585 to 0.560, the neural one rising from 0.559 to 0.569 (docs/results.md; 0 = off).",
        minimum=0, maximum=100, neutral=0.0)
    rhyme_bonus: float = option(
        0.25, "Ranking drafts of free poems: plus this when the even lines rhyme (1,000 free poems, two seeds, "
        "with --line_end_repeat_penalty 3: 62 % rhyme at 0.25, 72 % at 0.5; held-out real poems 60 %).",
        minimum=0, neutral=0.0)
    keyword_bonus: float = option(
        3.0, "With --keywords: added to each keyword's logit until the poem holds it, a pull rather than a mask "
        "(0 = only a keywords model's prompt; docs/results.md has the rates).", minimum=0, maximum=100, neutral=0.0)
    title_bonus: float = option(
        3.0, "With --title: added to the logit of each of the title's characters until the poem holds it, in "
        "part for characters poets seldom write into the poem (咏, 赠; see titles.py), so any poem model writes "
        "towards its title (0 = only a title or keywords model's prompt).",
        minimum=0, maximum=100, neutral=0.0)
    line_end_bonus: float = option(
        1.0, "五言 forms: at the first line's last character, plus this times how readily each character "
        "ends a line (line_ends.py): the model cannot know yet that the line ends there (0 = off).",
        minimum=0, maximum=100, neutral=0.0)
    reuse_penalty: float = option(
        1.5, "Minus this from the logit of a character that would repeat a character pair an earlier poem of "
        "the same ask wrote (poems are written in rounds 1, 1, 2, 4, 8, ...; each round avoids the rounds "
        "before it): the model's favourite phrases would otherwise recur from poem to poem. A penalty, "
        "not a mask: the log-probabilities the ranking reads stay the model's own (0 = off).",
        minimum=0, maximum=100, neutral=0.0)
    repeat_penalty: float = option(
        1.0, "Free poems: minus this from the logit of a character for each use past the second (a regular poem "
        "masks a third use; a penalty, not a mask, so a refrain can still return; lyrics streams are left alone; "
        "0 = off).", minimum=0, maximum=100, neutral=0.0)
    double_penalty: float = option(
        2.0, "Minus this from the logit of the previous character where Tang poets seldom double it (源源, 多多; "
        "doubled less often than corpus/doubles.py's COMMON_DOUBLE in the training poems), where 萧萧 and 悠悠 are left as "
        "they are; lyrics are left alone (0 = off).", minimum=0, maximum=100, neutral=0.0)
    couplet_repeat_penalty: float = option(
        1.5, "Minus this from the logit of a Han character already said in the couplet being written (a ci: its "
        "sentence), unless it doubles the one before. At 1.5, 11 % of 1,000 七绝's couplets say a character "
        "twice and 5 % of 五律's (35 % and 19 % at 0; held-out real poems 14 % and 3 %); lyrics are left alone "
        "(0 = off).", minimum=0, maximum=100, neutral=0.0)
    line_end_repeat_penalty: float = option(
        3.0, "At a line's last character, minus this from the logit of each character an earlier line of the poem "
        "ended on (regular poems' unrhymed lines, whose rhymes a mask keeps apart, and free poems given a line "
        "length). Of 1,000 free poems 34 % did so at 0 and 7-9 % at 3 (held-out real poems 3.8 %; docs/results.md); "
        "lyrics are left alone (0 = off).",
        minimum=0, maximum=100, neutral=0.0)
    overuse_penalty: float = option(
        1.0, "Minus this times how much more often the model's own drafts of the form use a character at that "
        "place in the line (its first character, its last, the others) than real poems of the form do (log of "
        "the ratio, clipped to ±2; the model's overuse.npz, learnt by python -m "
        "poetry_rnn.critic), inside the nucleus: the model's stock images (寺 送 江 山 秋) give way to characters "
        "poets used more. Templates, ci and lyrics are left alone (0 = off).",
        minimum=0, maximum=100, neutral=0.0)
    allow_copies: bool = option(
        False, "Ranking drafts: let a draft that is word for word a poem the model trained on win on its score "
        "(a model keeps its training poems' fingerprints, model/training_poems.py); by default it is kept only "
        "when every draft of its poem is one: 2 of 200 free poems were short training poems.", neutral=True)
    natural_end: bool = option(
        True, "Free poems that end where the model likes (--couplets model): end as often as the model itself "
        "would (its own probability of ending, which "
        "--temperature and --top_p would otherwise sharpen into ending early: the end is one token against "
        "thousands of ways to go on); off: the end is drawn with the characters.", neutral=False)
    seed: int = option(None, "Seed for reproducible poems (default: random, printed on stderr).", minimum=0,
                       maximum=2**31 - 1, neutral=0)

    def __post_init__(self):
        validate(self)

    @classmethod
    def neutral(cls, name):
        """The value of setting ``name`` that turns it off (its processor takes it where none is given)."""
        return next(f.metadata["neutral"] for f in dataclasses.fields(cls) if f.name == name)

    @classmethod
    def plain(cls, **changes):
        """Plain sampling from the model: one draft, no top-p, and every pull and penalty off.

        Every setting at its neutral value, for tests, benchmarks and
        training-time samples that want the model as it is.
        """
        return cls(**{**{f.name: f.metadata["neutral"] for f in dataclasses.fields(cls)}, **changes})


MAX_KEYWORDS = 8  # training shows 0-3 (dataset.KEYWORDS_MOST); a few more still prime, many only dilute
MAX_TITLE = 32  # characters: longer than almost every Tang title, and each one is a pulled character and a prompt step
MAX_POEMS = 10_000  # poems in one ask (num x begins); the decoder runs them in chunks
MAX_TEMPLATE = 200  # characters: prepare's --max_len, so no template is longer than a poem the model has read
TONE_STARTS = poem_request.TONE_STARTS + ("random",)
SUBJECTS = ("draw", "none")
SHAPE_CHOICES = ("draw", "model")  # --couplets and --line_chars: or a number
SHORT_LINE = 5  # characters: as short as a Tang line commonly is, for how many couplets fit max_len


@dataclasses.dataclass(frozen=True)
class PoemOptions(poem_request.PoemShape):
    """What to write: one ask's poems. The shape they share is ``PoemShape``'s; here, what makes them many."""

    begin: list = option([], "Begin characters: one poem (per --num) for each, e.g. --begin 日 红 山 夜.")
    num: int = option(1, "Poems per begin character (or in all without --begin).", minimum=1, maximum=MAX_POEMS)
    tone_start: str = option("random", "平起 (ping) or 仄起 (ze); random: per poem, among the starts that fit.",
                             choices=TONE_STARTS)
    keywords: list = option([], "Characters to write about, e.g. --keywords 江 月 夜: pulled in by --keyword_bonus "
                            "(any poem model) and read as a prompt by models trained with --condition keywords (the "
                            "shipped one is). A pull, not a promise: docs/results.md has how often they appear.")
    subject: str = option("draw", "A poem with no --title or --keywords (and no --cipai): draw a real Tang poem's "
                          "title to write to (data/subjects.tsv, by how many poems have it; printed above the poem), "
                          "so that many poems range over many subjects as real ones do; none: write with no subject.",
                          choices=SUBJECTS)
    couplets: str = option("draw", "Free poems: how many couplets (sentences closed by 。？！) before the end. draw: "
                           "as many as a real poem of the title has (data/subjects.tsv; any real poem's without "
                           "one), so that poems run as long as real ones; model: where the model ends it; or a "
                           "number, e.g. 4.", words=SHAPE_CHOICES, minimum=1, maximum=50)  # real poems: up to 19
    line_chars: str = option("draw", "Free poems: characters in every line. draw: as in the real poem --couplets draws "
                             "(one whose lines differ: the model's choice); model: the model's choice; or a number, "
                             "e.g. 7.", words=SHAPE_CHOICES, minimum=1, maximum=15)  # 七言 and then some
    prefix: list = option([], "Lyrics models: text to continue for --length characters, e.g. --prefix 分开 不分开.")
    length: int = option(50, "Lyrics models: characters to add after each --prefix.", minimum=1, maximum=10_000)

    def __post_init__(self):
        validate(self)
        self._check_shape()
        if not all(isinstance(k, str) for k in self.keywords):
            raise OptionError("keywords", f"must be characters, got {self.keywords!r}")
        wrong = [c for c in self.keyword_text if not prosody.is_han(c)]
        if wrong:
            raise OptionError("keywords", f"takes Han characters, got {wrong[0]!r}")
        if len(self.keyword_text) > MAX_KEYWORDS:
            raise OptionError("keywords", f"takes at most {MAX_KEYWORDS} characters, got {len(self.keyword_text)}")
        if len(self.title) > MAX_TITLE:
            raise OptionError("title", f"takes at most {MAX_TITLE} characters, got {len(self.title)}")
        if len(self.template) > MAX_TEMPLATE:
            raise OptionError("template", f"takes at most {MAX_TEMPLATE} characters (the longest poem the corpus "
                              f"keeps), got {len(self.template)}")
        if self.cipai == cipai.LIST:  # the command line prints the list before it builds any options
            raise OptionError("cipai", f"{cipai.LIST!r} names no tune: `write --cipai {cipai.LIST}` prints them, "
                              "as do GET /api/tunes and poetry_rnn.verse.cipai.tune_list()")
        if self.cipai:
            try:
                cipai.lookup(self.cipai)
            except PoetryError as error:
                raise OptionError("cipai", str(error)) from None
        if self.count > MAX_POEMS:
            raise PoetryError(f"at most {MAX_POEMS} poems in one ask, got {self.count} (--num x begin characters)")

    def _check_shape(self):
        for name in ("couplets", "line_chars"):
            if getattr(self, name) not in SHAPE_CHOICES and not self.free:
                raise OptionError(name, "shapes a free poem: a form, template or tune shapes its own")
        if self.couplets.isdigit() and int(self.couplets) * self._couplet_chars() > self.max_len:
            raise OptionError("couplets", f"({self.couplets}) need up to {int(self.couplets) * self._couplet_chars()} "
                              f"characters, more than max_len ({self.max_len})")

    def _couplet_chars(self, line_chars=0):
        """The characters one couplet takes: two lines and their marks (lines of SHORT_LINE if not given)."""
        given = int(self.line_chars) if self.line_chars.isdigit() else line_chars
        return 2 * ((given or SHORT_LINE) + 1)

    @property
    def free(self):
        """Its poems are free: no form, template or tune lays them out."""
        return self.form == forms.FREE and not self.template and not self.cipai

    def shape_of(self, drawn):
        """A free poem's (couplets, line characters), given a real poem's ``drawn`` for its title
        (``titles.draw_shape``); 0 for the model's choice, and for shaped poems.

        A drawn poem gets at most as many couplets as fit max_len, so that it
        is not cut mid-sentence.
        """
        if not self.free:
            return 0, 0
        couplets, line_chars = (drawn_value if value == "draw" else 0 if value == "model" else int(value)
                                for value, drawn_value in zip((self.couplets, self.line_chars), drawn))
        if self.couplets == "draw":
            couplets = min(couplets, self.max_len // self._couplet_chars(line_chars))
        return couplets, line_chars

    @property
    def keyword_text(self):
        """The keywords as one string of distinct characters, in the order given (江月 and 江 月 alike)."""
        return "".join(dict.fromkeys("".join(self.keywords)))

    @property
    def longest(self):
        """The most characters one poem of this ask can take: its tune's, its form's, its template's, or max_len."""
        form = forms.FORMS.get(self.form)
        if self.cipai:
            lengths = cipai.lookup(self.cipai).lengths
            return sum(lengths) + len(lengths)
        if self.template:
            return len(self.template)
        return form.lines * (form.chars_per_line + 1) if form else self.max_len

    @property
    def count(self):
        """Poems this ask writes: --num for each begin character (or prefix)."""
        return self.num * max(len(self.prefix or self.begin), 1)

    @property
    def draws_subjects(self):
        """Its poems draw a subject: asked to, and given none (no title, keywords or tune)."""
        return self.subject == "draw" and not (self.title or self.keywords or self.cipai)

    def request(self, begin, tone_start, title=None):
        """The PoemRequest of one of this ask's poems: the shared shape, this poem's begin, tone start and
        (a drawn subject) title."""
        shape = {f.name: getattr(self, f.name) for f in dataclasses.fields(poem_request.PoemShape)}
        if title is not None:
            shape["title"] = title
        return poem_request.PoemRequest(begin=begin, keywords=self.keyword_text, tone_start=tone_start, **shape)

    def used_poem_options(self):
        """The poem-only options this ask sets (a lyrics model refuses them)."""
        used = {"--form": self.form != forms.FREE, "--cipai": self.cipai, "--rhyme": self.rhyme or self.rhyme_loose,
                "--tones": self.tones != "off",
                "--acrostic": self.acrostic, "--template": self.template, "--title": self.title,
                "--keywords": self.keywords, "--couplets": self.couplets not in SHAPE_CHOICES,
                "--line_chars": self.line_chars not in SHAPE_CHOICES}
        return [name for name, value in used.items() if value]
