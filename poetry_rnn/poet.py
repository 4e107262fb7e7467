"""The Python API, and the one path every front end shares: load a model once, write poems.

    import poetry_rnn
    poet = poetry_rnn.load()                      # the shipped model, or load("path/to/model_dir")
    poems = poet.write(begin="日", form="qijue", rhyme=True, num=4, seed=1)
    print(poems[0].text, poems[0].lines, poems[0].rhyme_group)

``write`` (the command line), ``evaluate``'s samples and ``serve`` (the web
page and JSON API) are thin layers over :class:`Poet`, so an option means the
same thing in all of them. The options are the fields of
:class:`options.PoemOptions` (what to write) and
:class:`options.SamplingOptions` (how characters are drawn); a bad value raises :class:`PoetryError` with the one-line message the
command line prints. :meth:`Poet.write_asks` decodes many asks in one
batched in-graph call (the server coalesces concurrent requests with it);
each poem's random numbers are keyed by its ask's seed and its number in
that ask, so a poem is the same whether it was decoded alone or batched.
"""

import dataclasses
import functools
import math
import os
import random

from poetry_rnn.corpus import titles
from poetry_rnn.generation import constraints, critic, drafts, noise, overuse, ranking, sampler
from poetry_rnn.infra.errors import OptionError, PoetryError
from poetry_rnn.model import store, training_poems
from poetry_rnn.options import ModelOptions, PoemOptions, SamplingOptions
from poetry_rnn.verse import cipai, forms, poem_request, validator

# Decoder work per call (rows x the most characters a row may take, as ``Poet.cost``
# counts it): 512 free poems' drafts of 120 characters. Bounds memory, not results.
CHUNK_COST = 512 * 120


@dataclasses.dataclass(frozen=True)
class Ask:
    """One call's worth of poems: what to write, how to sample, and the seed actually used."""

    poem: PoemOptions
    sampling: SamplingOptions  # its seed is always set (drawn at random when the caller gave none)

    @property
    def rows(self):
        """Decoder rows the ask takes: each poem is drafted best_of times."""
        return self.poem.count * self.sampling.best_of


@dataclasses.dataclass
class Poem:
    """One written poem, as plain data."""

    text: str  # the content, punctuation included (lyrics: the prefix and its continuation)
    lines: list  # one entry per sentence, its punctuation kept
    title: str
    begin: str
    form: str
    cipai: str  # the tune of a ci ('' for a poem)
    rhyme_group: str | None  # e.g. '十一庚' when rhyme was asked for; a ci's, one per rhyme set: '第四部 第十八部'
    tone_start: str | None  # 'ping' | 'ze' when tones were asked for
    logprobs: list  # log p of each written token (EOS included) under the model
    ended: bool  # reached the end of the poem (a free poem may be cut at max_len instead)
    seed: int  # the ask's seed: the same ask with it writes the same poems

    @property
    def mean_logprob(self):
        """Mean log-probability per character; None for a poem with no written tokens."""
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else None

    def to_dict(self):
        """JSON-ready: rounded numbers, and never NaN or Infinity (not valid JSON)."""
        def number(x):
            return round(x, 4) if x is not None and math.isfinite(x) else None

        out = dataclasses.asdict(self)
        out["logprobs"] = [number(x) for x in self.logprobs]
        out["mean_logprob"] = number(self.mean_logprob)
        return out


def split_options(kwargs):
    """Keyword arguments -> (PoemOptions fields, SamplingOptions fields); unknown names refused."""
    poem_names = {f.name for f in dataclasses.fields(PoemOptions)}
    sampling_names = {f.name for f in dataclasses.fields(SamplingOptions)}
    unknown = sorted(set(kwargs) - poem_names - sampling_names)
    if unknown:
        raise PoetryError(f"unknown option {unknown[0]!r}; options are {', '.join(sorted(poem_names | sampling_names))}")
    return ({k: v for k, v in kwargs.items() if k in poem_names},
            {k: v for k, v in kwargs.items() if k in sampling_names})


def make_ask(poem=None, sampling=None, **kwargs):
    """An :class:`Ask` from option objects and/or keyword options; a random seed if none is given.

    ``begin``, ``prefix`` and ``keywords`` also take one string (``begin="日"``:
    one begin, possibly of several characters; ``keywords="江月"``: two keywords).
    """
    for name in ("begin", "prefix", "keywords"):
        if isinstance(kwargs.get(name), str):
            kwargs[name] = [kwargs[name]]
        elif isinstance(kwargs.get(name), tuple):
            kwargs[name] = list(kwargs[name])
    poem_kwargs, sampling_kwargs = split_options(kwargs)
    poem = dataclasses.replace(poem, **poem_kwargs) if poem else PoemOptions(**poem_kwargs)
    sampling = dataclasses.replace(sampling, **sampling_kwargs) if sampling else SamplingOptions(**sampling_kwargs)
    if sampling.seed is None:
        sampling = dataclasses.replace(sampling, seed=random.SystemRandom().randrange(noise.MAX_SEED))
    return Ask(poem, sampling)


def poem_requests(poem, seed, vocab=None):
    """One PoemRequest per (begin, copy); 平起/仄起 at random per poem unless given; a subject if it has none.

    A random start is drawn (by ``seed``) among those the fixed characters
    fit, so ``--begin 东 --tones`` never fails for a start it could have
    avoided. With ``subject="draw"`` a poem given no title, keywords or tune
    gets a real title (``titles.draw_subject``, by its own draws from
    ``seed``), one whose characters ``vocab`` holds when it is given; with
    ``couplets`` and ``line_chars`` "draw" a free poem gets a real poem's
    shape for its title (``PoemOptions.shape_of``, by draws of its own).
    """
    rng, subjects, shapes = random.Random(seed), random.Random(f"subject {seed}"), random.Random(f"shape {seed}")
    requests = []
    for begin in poem.begin or [""]:
        request = poem.request(begin, poem_request.TONE_STARTS[0])
        fitting = constraints.tone_starts_that_fit(request) or [request.tone_start]
        starts = [poem.tone_start] if poem.tone_start != "random" else fitting
        for _ in range(poem.num):
            title = draw_subject(subjects, vocab) if poem.draws_subjects else request.title
            couplets, line_chars = poem.shape_of(titles.draw_shape(shapes, title) if poem.free else (0, 0))
            requests.append(dataclasses.replace(request, tone_start=rng.choice(starts), title=title,
                                                couplets=couplets, line_chars=line_chars))
    return requests


def draw_subject(rng, vocab=None, tries=100):
    """A real title to write to whose characters ``vocab`` holds ('' if none is found in ``tries``)."""
    for _ in range(tries):
        title = titles.draw_subject(rng)
        if vocab is None or all(c in vocab for c in title):
            return title
    return ""


class Poet:
    """A loaded model and its compiled decoder: write poems many times without reloading.

    A model directory may carry a model for ci in its ``ci/`` folder (the
    shipped one does: the poem model fine-tuned on Song ci); asks with a
    ``cipai`` are written by it, loaded on the first such ask. It may also
    carry a critic of drafts in ``critic/``, read when an ask ranks with it,
    an over-use table (``overuse.npz``), read when an ask pulls against it,
    and its training poems' fingerprints, so that a draft copying one is
    ranked last (``model/training_poems.py``).
    """

    def __init__(self, loaded):
        self.loaded = loaded
        self.decoder = sampler.Decoder(loaded.model)
        companion = os.path.join(loaded.path, store.CI_COMPANION)
        self._ci_dir = companion if store.exists(companion) else None  # looked for once, not per ask
        self._ci_poet = None

    @functools.cached_property
    def critic(self):
        """The model directory's critic of drafts (``generation/critic.py``), or None; loaded when first asked for."""
        return critic.load(self.loaded.path, self.loaded.vocab)

    @functools.cached_property
    def overuse(self):
        """The model directory's over-use table (``generation/overuse.py``), or None; read when first asked for."""
        return overuse.load(self.loaded.path, self.loaded.vocab)

    @functools.cached_property
    def training_poems(self):
        """The poems the model trained on (``model/training_poems.py``), or None; read when first asked for."""
        return training_poems.load(self.loaded.path)

    def poet_for(self, ask):
        """The Poet that writes ``ask``: this one, or for a ci its ``ci/`` companion when the model has one."""
        if not ask.poem.cipai or self._ci_dir is None:
            return self
        if self._ci_poet is None:
            self._ci_poet = Poet(store.load(self._ci_dir, self.loaded.model.dtype_policy.name))
        return self._ci_poet

    def warm_up(self):
        """Load and trace all that a first request would otherwise wait for: the decoder, and the ci companion's.

        The server calls it before it listens, so no request pays for loading
        a model or tracing its decoder while others wait behind it.
        """
        if self.is_lyrics:
            self.write(num=1, seed=0)
            return
        self.write(num=1, seed=0, form="qijue")
        if self._ci_dir is not None:
            self.write(num=1, seed=0, cipai=next(iter(cipai.read_table())))

    @property
    def path(self):
        return self.loaded.path

    @property
    def is_lyrics(self):
        """A stream model (the lyrics lessons): it continues prefixes instead of writing poems."""
        return self.loaded.train.get("corpus") == "lyrics"

    def write(self, begin=(), *, poem=None, sampling=None, **options):
        """Poems for one ask, e.g. ``write(begin=["日", "月"], form="qijue", rhyme=True, num=2, seed=1)``.

        ``options`` are :class:`PoemOptions` and :class:`SamplingOptions`
        fields; ``poem``/``sampling`` may give whole option objects instead.
        A bad value raises PoetryError naming the keyword argument.
        """
        if begin:
            options["begin"] = begin
        try:
            ask = make_ask(poem, sampling, **options)
        except OptionError as error:
            raise error.spoken_as("keyword") from None
        return self.write_asks([ask])[0]

    def write_asks(self, asks):
        """Poems for many asks in one batched decode (in chunks of at most CHUNK_COST of work).

        Returns one list of poems per ask. A bad ask raises PoetryError
        naming it when there are several.
        """
        writing = Writing(self, asks)
        while not writing.done:
            writing.step()
        return writing.poems

    def cost(self, ask):
        """The decoder work an ask asks for: drafts x poems x the most characters one poem may take.

        What the server budgets per request, and ``Writing`` per chunk (the
        server's slices of a long request).
        """
        return ask.rows * self.characters(ask)

    def characters(self, ask):
        """The most decoding steps one poem of ``ask`` may take."""
        poem = ask.poem
        if self.is_lyrics:
            return max(map(len, poem.prefix or poem.begin or [""])) + poem.length
        return poem.longest

    def check(self, ask):
        """Raise PoetryError now if ``ask`` can never be written (what write_asks would raise).

        The server calls it before queueing, so one impossible ask never fails a coalesced batch;
        ``write_asks`` itself leaves the planning to the decode call, which plans anyway.
        """
        poet = self.poet_for(ask)
        items = poet._items(ask)
        if not poet.is_lyrics:
            constraints.plan(items, poet.loaded.vocab, poet.loaded.config)

    def _items(self, ask):
        """An ask's PoemRequests (poem models) or prefixes (lyrics models)."""
        poem = ask.poem
        if self.is_lyrics:
            used = poem.used_poem_options()
            if used:
                raise PoetryError(f"{self.path} is a lyrics model; {', '.join(used)} needs a poem model")
            return [p for p in (poem.prefix or poem.begin or [""]) for _ in range(poem.num)]
        if poem.prefix:
            raise PoetryError(f"{self.path} is a poem model; --prefix and --length are for lyrics models (use --begin)")
        return poem_requests(poem, ask.sampling.seed, self.loaded.vocab)

    def _decode(self, asks, jobs, poems, memory):
        """Decode one chunk of jobs and append each poem to its ask's list (``memory``: see Writing)."""
        items = [item for _, item, _ in jobs]
        sampling = [asks[a].sampling for a, _, _ in jobs]
        placement = drafts.Placement.of(len(jobs), [i for _, _, i in jobs], [a for a, _, _ in jobs], memory)
        vocab = self.loaded.vocab
        if not self.is_lyrics:
            judged = any(s.critic_weight > 0 for s in sampling)  # only then is the critic loaded
            pulled = any(s.overuse_penalty > 0 for s in sampling)  # only then is the table read
            out = drafts.generate(self.decoder, vocab, items, sampling, placement, critic=self.critic if judged else None,
                                  known=self.training_poems, overuse=self.overuse if pulled else None)
        else:  # one decode per continuation length
            out = [None] * len(jobs)
            for length in {asks[a].poem.length for a, _, _ in jobs}:
                picked = [k for k, (a, _, _) in enumerate(jobs) if asks[a].poem.length == length]
                written = drafts.continue_streams(self.decoder, vocab, [items[k] for k in picked], length,
                                                  [sampling[k] for k in picked], placement.pick(picked))
                for k, draft in zip(picked, written):
                    out[k] = draft
        for (a, _, _), written in zip(jobs, out):
            poems[a].append(self._poem(written, asks[a]))

    def _draft_part(self, asks, job, copies, memory):
        """The drafts numbered ``copies`` of one job (a poem whose drafts cost more than a chunk), not ranked."""
        a, item, index = job
        sampling, placement = [asks[a].sampling], drafts.Placement.of(1, [index], [a], memory)
        if self.is_lyrics:
            written, _ = drafts.draft_streams(self.decoder, self.loaded.vocab, [item], asks[a].poem.length, sampling,
                                              placement, [copies])
        else:
            critic = self.critic if sampling[0].critic_weight > 0 else None
            table = self.overuse if sampling[0].overuse_penalty > 0 else None
            written, _ = drafts.draft_poems(self.decoder, self.loaded.vocab, [item], sampling, placement, critic,
                                            [copies], self.training_poems, table)
        return written

    def _keep_best(self, asks, job, written, poems, memory):
        """Rank all the drafts of a job drafted in parts, and append the best to its ask's poems."""
        a, _, index = job
        best = drafts.rank(written, [0] * len(written), [asks[a].sampling], drafts.Placement.of(1, [index], [a], memory))
        poems[a].append(self._poem(best[0], asks[a]))

    def _poem(self, written, ask):
        request = written.request
        tune = poem_request.tune_of(request)
        lines = [written.content] if self.is_lyrics else forms.split_lines(written.content)
        return Poem(
            text=written.content,
            lines=lines,
            title=written.title or (tune.tune if tune else ""),
            begin=request.begin,
            form=request.form,
            cipai=tune.tune if tune else "",
            rhyme_group=self._rhyme_group(written.content, request),
            tone_start=request.tone_start if request.tones != "off" else None,
            logprobs=list(written.logprobs),
            ended=written.ended,
            seed=ask.sampling.seed,
        )

    @staticmethod
    def _rhyme_group(content, request):
        if request.cipai:
            return validator.ci_rhyme_names(content, request)
        if request.rhyme:
            return validator.rhyme_group_name(content, request.first_line_rhymes, poem_request.scheme_of(request))
        return None


class Writing:
    """Asks being written one chunk of drafts at a time (``step``), so a caller can do other work between chunks.

    A chunk costs at most ``chunk_cost``: its decoder rows (poems x best_of)
    times the most characters one of its poems may take (``Poet.cost``), so
    a chunk of long poems has fewer rows and takes about as long as one of
    short poems. A poem whose drafts alone cost more is drafted in parts, a
    chunk each, and ranked after its last part. The poems do not depend on
    where the chunks fall, because each draft's random numbers are keyed by
    its ask's seed, the poem's number in that ask and the draft's own number,
    and each ask's memory (novelty, reuse penalty) carries over from chunk to
    chunk. The server writes a long request this way, serving short ones
    between its chunks. A chunk is written by one poet: ci asks by the ci
    model (``Poet.poet_for``), after the poems.
    """

    def __init__(self, poet, asks, chunk_cost=CHUNK_COST):
        self.asks = list(asks)
        poets = [poet.poet_for(ask) for ask in self.asks]
        jobs = []  # (poet, (ask number, request or prefix, index in its ask))
        for a, ask in enumerate(self.asks):
            try:
                items = poets[a]._items(ask)
            except PoetryError as error:
                if len(self.asks) == 1:
                    raise
                raise PoetryError(f"ask {a + 1}: {error}") from None
            jobs += [(poets[a], (a, item, i)) for i, item in enumerate(items)]
        jobs.sort(key=lambda job: job[0] is not poet)  # stable: the poems first, then the ci companion's
        self.chunks = []  # (poet, jobs, None) or, for one poem's drafts in parts, (poet, [job], range of drafts)
        rows, longest = 0, 0
        for job_poet, job in jobs:
            ask = self.asks[job[0]]
            drafts_of_job, characters = ask.sampling.best_of, job_poet.characters(ask)
            if drafts_of_job * characters > chunk_cost:
                part = max(1, chunk_cost // characters)
                self.chunks += [(job_poet, [job], range(start, min(start + part, drafts_of_job)))
                                for start in range(0, drafts_of_job, part)]
                continue
            if (not self.chunks or self.chunks[-1][0] is not job_poet or self.chunks[-1][2] is not None
                    or (rows + drafts_of_job) * max(longest, characters) > chunk_cost):
                self.chunks.append((job_poet, [], None))
                rows, longest = 0, 0
            self.chunks[-1][1].append(job)
            rows, longest = rows + drafts_of_job, max(longest, characters)
        self.chunks.reverse()  # popped from the end, first chunk first
        self.poems = [[] for _ in self.asks]
        self.memory = ranking.AskMemory()  # per ask: bigrams of its poems chosen so far (novelty term, reuse penalty)
        self.drafted = []  # the drafts so far of a poem drafted in parts

    @property
    def done(self):
        return not self.chunks

    def step(self):
        """Decode the next chunk and append its poems to their asks' lists."""
        poet, jobs, copies = self.chunks.pop()
        if copies is None:
            poet._decode(self.asks, jobs, self.poems, self.memory)
            return
        self.drafted += poet._draft_part(self.asks, jobs[0], copies, self.memory)
        if copies.stop == self.asks[jobs[0][0]].sampling.best_of:
            poet._keep_best(self.asks, jobs[0], self.drafted, self.poems, self.memory)
            self.drafted = []


def load(model_dir=None, precision=ModelOptions.precision):
    """A :class:`Poet` for ``model_dir``, or for the shipped default model, decoding at ``precision`` (ModelOptions)."""
    try:
        options = ModelOptions(model_dir, precision)
    except OptionError as error:
        raise error.spoken_as("keyword") from None
    return Poet(store.load(options.model_dir or store.DEFAULT_MODEL_DIR, options.resolved()))
