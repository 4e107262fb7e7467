"""Learn from a model's own drafts what gives them away: its critic (``generation/critic.py``) and its over-use
table (``generation/overuse.py``).

The drafts are written on ``write``'s path at its defaults, one draft per
poem (``best_of`` 1), for each form, with no over-use penalty: the table
measures the model's own lean, and the critic judges drafts as ``best_of``
sees them. Pulling the favourites down hands their share to the next ones
(a 五律 line that no longer begins with 山 begins with 一 or 千), and can
push them under real use (free poems' 。春), so each further round of the
table (``overuse_rounds``) writes drafts at penalty 1 with the table so far
and adds what they still over- or under-use. The real poems are the
training split's poems of the same forms (free poems: any), so the held-out
poems the realism benchmark and ``evaluate`` judge with stay unseen. The
critic sees as many real poems of a form as drafts, so it cannot tell them
apart by form or length alone; the table counts every real poem of the form.
"""

import dataclasses
import os
import random
import time

from poetry_rnn import poet as poet_lib
from poetry_rnn.corpus import reading, split
from poetry_rnn.generation import critic as critic_lib, overuse
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.infra.fields import option, validate
from poetry_rnn.options import PoemOptions, SamplingOptions
from poetry_rnn.training.train_options import TrainOptions
from poetry_rnn.verse import forms


@dataclasses.dataclass(frozen=True)
class CriticData:
    """What the critic is trained on."""

    drafts_per_form: int = option(2000, "Drafts the model writes per form, and real poems of that form beside them.",
                                  minimum=10)
    forms: str = option("qijue,wujue,qilv,wulv,free", "Forms the critic learns, comma-separated.")
    seed: int = option(0, "Seed of the drafts and of the real poems picked.", minimum=0)
    learn: str = option("critic,overuse", "What to learn from the drafts, comma-separated: critic (the critic of "
                        "drafts, critic/) and overuse (the over-use table, overuse.npz).")
    overuse_rounds: int = option(1, "Rounds of the over-use table: the first from drafts without the penalty, each "
                                 "next from drafts written at penalty 1 with the table so far, adding what they "
                                 "still over-use (each round writes as many drafts again).", minimum=1, maximum=5)

    def __post_init__(self):
        validate(self)
        unknown = [f for f in self.form_list if f not in forms.FORM_NAMES]
        if unknown or not self.form_list:
            raise PoetryError(f"--forms must be some of {', '.join(forms.FORM_NAMES)}, got {self.forms!r}")
        if not self.parts or not set(self.parts) <= set(PARTS):
            raise PoetryError(f"--learn must be some of {', '.join(PARTS)}, got {self.learn!r}")

    @property
    def form_list(self):
        return [f for f in self.forms.split(",") if f]

    @property
    def parts(self):
        return [p for p in self.learn.split(",") if p]


PARTS = ("critic", "overuse")


def real_poems(data, form_list):
    """{form: the training-split poems of that form}; free poems: all of them."""
    poems, _ = reading.read_poems(data)
    train, _ = split.split_train_valid(poems, TrainOptions().valid_fraction)
    by_form = {form: [] for form in form_list}
    for poem in train:
        shape = forms.classify(poem.content)
        if shape in by_form:
            by_form[shape].append(poem.content)
        if forms.FREE in by_form:
            by_form[forms.FREE].append(poem.content)
    return by_form


def drafts(poet, form_list, count, seed, overuse_penalty=0.0):
    """{form: ``count`` of the model's drafts}, written as ``write`` writes them but one draft per poem."""
    out = {}
    for form in form_list:
        ask = poet_lib.Ask(PoemOptions(form=form, rhyme=form != forms.FREE, num=count),
                           SamplingOptions(best_of=1, overuse_penalty=overuse_penalty, seed=seed))
        out[form] = [p.text for p in poet.write_asks([ask])[0]]
    return out


def learn_from_drafts(model_dir, data, config, what, log=print):
    """Write ``model_dir``'s drafts and learn from them what ``what.learn`` names; returns the paths written.

    The critic (``config``: its network and training) goes to ``critic/``,
    whose config.json records the held-out accuracy, the poems it saw, its
    size and how long it takes to score 8 drafts (one poem's ``best_of``);
    the over-use table to ``overuse.npz``.
    """
    poet = poet_lib.load(model_dir)
    if poet.is_lyrics:
        raise PoetryError(f"{poet.path} is a lyrics model; a critic and an over-use table are learnt from poems")
    real = real_poems(data, what.form_list)
    log(f"real poems (training split): {', '.join(f'{f} {len(t)}' for f, t in real.items())}")
    started = time.perf_counter()
    written = drafts(poet, what.form_list, what.drafts_per_form, what.seed)
    log(f"drafts: {sum(map(len, written.values()))} in {time.perf_counter() - started:.0f} s")
    paths = []
    if "critic" in what.parts:
        paths.append(train_critic(poet, data, real, written, config, what, log))
    if "overuse" in what.parts:
        table = None
        for round_ in range(1, what.overuse_rounds + 1):
            if table is not None:  # drafts pulled by the table so far, from the model directory it was saved to
                poet = poet_lib.load(model_dir)
                written = drafts(poet, what.form_list, what.drafts_per_form, what.seed + round_ - 1, 1.0)
            table = overuse.OveruseTable.learn(poet.loaded.vocab, written, real, base=table)
            for form in table.form_names:
                for place in overuse.PLACES:
                    if not table.row(form, place).any():
                        continue  # a free poem's line ends: no row
                    more, less = table.most(form, poet.loaded.vocab, place=place)
                    log(f"over-use round {round_}, {form}, {place}: most {' '.join(more)}; least {' '.join(less)}")
            path = table.save(poet.path)
            log(f"over-use table, round {round_} -> {path}")
        paths.append(path)
    return paths


def train_critic(poet, data, real, written, config, what, log):
    """Train the critic on as many real poems of each form as drafts (picked with ``what.seed``) and save it."""
    rng = random.Random(what.seed)
    picked = {form: rng.sample(texts, min(what.drafts_per_form, len(texts))) for form, texts in real.items()}
    pairs = [(r, w) for form in what.form_list for r, w in zip(picked[form], written[form])]  # as many of each
    critic, accuracy = critic_lib.fit(poet.loaded.vocab, [r for r, _ in pairs], [w for _, w in pairs], config)
    sample = [w for _, w in pairs[:8]]
    critic.score(sample)  # traced
    started = time.perf_counter()
    for _ in range(20):
        critic.score(sample)
    latency_ms = (time.perf_counter() - started) / 20 * 1000
    measured = {"held_out_accuracy": round(accuracy, 4), "poems_per_class": len(pairs), "forms": what.forms,
                "drafts_per_form": what.drafts_per_form, "seed": what.seed, "data": os.path.basename(data),
                "parameters": int(critic.model.count_params()), "ms_per_8_drafts": round(latency_ms, 2)}
    folder = critic.save(poet.path, measured)
    log(f"critic: held-out accuracy {accuracy:.3f} on {2 * max(1, int(len(pairs) * config.held_out))} poems, "
        f"{measured['parameters']:,} parameters, {latency_ms:.1f} ms per 8 drafts -> {folder}")
    return folder
