"""Train a model's critic (``generation/critic.py``) on real poems against the model's own drafts.

The negatives are drafts as ``best_of`` sees them: ``write``'s path at its
defaults, one draft per poem (``best_of`` 1), for each form. The positives
are training-split poems of the same forms (free poems: any), so the
held-out poems the realism benchmark and ``evaluate`` judge with stay
unseen. Real poems of a form are as many as its drafts, so the critic cannot
tell them apart by form or length alone.
"""

import dataclasses
import os
import random
import time

from poetry_rnn import poet as poet_lib
from poetry_rnn.corpus import reading, split
from poetry_rnn.generation import critic as critic_lib
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

    def __post_init__(self):
        validate(self)
        unknown = [f for f in self.form_list if f not in forms.FORM_NAMES]
        if unknown or not self.form_list:
            raise PoetryError(f"--forms must be some of {', '.join(forms.FORM_NAMES)}, got {self.forms!r}")

    @property
    def form_list(self):
        return [f for f in self.forms.split(",") if f]


def real_poems(data, form_list, count, seed):
    """{form: up to ``count`` training-split poems of that form}; free poems are drawn from all of them."""
    poems, _ = reading.read_poems(data)
    train, _ = split.split_train_valid(poems, TrainOptions().valid_fraction)
    by_form = {form: [] for form in form_list}
    for poem in train:
        shape = forms.classify(poem.content)
        if shape in by_form:
            by_form[shape].append(poem.content)
        if forms.FREE in by_form:
            by_form[forms.FREE].append(poem.content)
    rng = random.Random(seed)
    return {form: rng.sample(texts, min(count, len(texts))) for form, texts in by_form.items()}


def drafts(poet, form_list, count, seed):
    """{form: ``count`` of the model's drafts}, written as ``write`` writes them but one draft per poem."""
    out = {}
    for form in form_list:
        ask = poet_lib.Ask(PoemOptions(form=form, rhyme=form != forms.FREE, num=count),
                           SamplingOptions(best_of=1, seed=seed))
        out[form] = [p.text for p in poet.write_asks([ask])[0]]
    return out


def train_critic(model_dir, data, config, what, log=print):
    """Train the critic of ``model_dir`` (``config``: its network and training, ``what``: its data) and save it.

    Returns the folder written. Its config.json records the held-out
    accuracy, the poems it saw, its size and how long it takes to score 8
    drafts (one poem's ``best_of``).
    """
    poet = poet_lib.load(model_dir)
    if poet.is_lyrics:
        raise PoetryError(f"{poet.path} is a lyrics model; a critic judges poems")
    real = real_poems(data, what.form_list, what.drafts_per_form, what.seed)
    log(f"real poems (training split): {', '.join(f'{f} {len(t)}' for f, t in real.items())}")
    started = time.perf_counter()
    written = drafts(poet, what.form_list, what.drafts_per_form, what.seed)
    log(f"drafts: {sum(map(len, written.values()))} in {time.perf_counter() - started:.0f} s")
    pairs = [(r, w) for form in what.form_list for r, w in zip(real[form], written[form])]  # as many of each, per form
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
