"""A critic of drafts: trained on real poems against the model's own drafts, it ranks drafts and does nothing else."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from conftest import run_module
from poetry_rnn import poet as poet_lib
from poetry_rnn.evaluation import critic_training
from poetry_rnn.generation import critic as critic_lib
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.verse import validator


@pytest.fixture(scope="module")
def criticised(tiny_model_dir, tmp_path_factory):
    bundle = tmp_path_factory.mktemp("critic") / "model"
    shutil.copytree(tiny_model_dir, bundle)
    data = os.path.join(os.path.dirname(tiny_model_dir), "poems.txt")
    critic_training.learn_from_drafts(str(bundle), data, critic_lib.CriticConfig(embed_dim=8, units=8, epochs=2),
                                 critic_training.CriticData(drafts_per_form=40, forms="wujue,qijue"),
                                 log=lambda *a: None)
    return str(bundle)


def test_learning_from_drafts_saves_a_critic_the_poet_loads_with_what_it_measured(criticised):
    with open(os.path.join(criticised, critic_lib.FOLDER, critic_lib.CONFIG), encoding="utf-8") as handle:
        measured = json.load(handle)["measured"]
    assert measured["poems_per_class"] == 80 and 0 <= measured["held_out_accuracy"] <= 1
    assert measured["parameters"] > 0 and measured["ms_per_8_drafts"] > 0
    poet = poet_lib.load(criticised)
    scores = poet.critic.score(["春花秋月何，时了往事知。小楼昨夜又，东风故国不。", "春风。"])
    assert scores.shape == (2,) and np.isfinite(scores).all()


class RecordingCritic:
    """Scores each text by a fixed random draw and remembers what it was asked about."""

    def __init__(self):
        self.asked, self.rng, self.given = [], np.random.default_rng(0), {}

    def score(self, texts):
        self.asked.append(list(texts))
        return np.array([self.given.setdefault(t, self.rng.normal()) for t in texts], np.float32)


def test_a_heavy_critic_weight_keeps_each_poem_s_best_draft_by_the_critic(criticised):
    poet = poet_lib.load(criticised)
    poet.critic = RecordingCritic()
    options = dict(form="wujue", rhyme=True, num=5, best_of=4, seed=4, reuse_penalty=0.0, novelty_weight=0.0)
    assert poet.write(**options, critic_weight=0.0) and not poet.critic.asked  # weight 0: the critic is not asked
    chosen = poet.write(**options, critic_weight=100.0)
    (drafts,) = poet.critic.asked
    assert len(drafts) == 20
    for k, poem in enumerate(chosen):
        mine = drafts[4 * k: 4 * k + 4]
        assert poem.text == max(mine, key=poet.critic.given.get)


def test_the_critic_changes_which_draft_is_kept_never_the_form(criticised):
    poet = poet_lib.load(criticised)
    ask = poet_lib.make_ask(form="qijue", rhyme=True, tones=True, num=6, seed=9, critic_weight=0.0)
    plain = poet.write(poem=ask.poem, sampling=ask.sampling)
    judged = poet.write(poem=ask.poem, sampling=dataclasses.replace(ask.sampling, critic_weight=20.0))
    assert [p.text for p in judged] != [p.text for p in plain]
    requests = poet_lib.poem_requests(ask.poem, ask.sampling.seed, poet.loaded.vocab)
    assert all(validator.check_poem(p.text, r) == [] for p, r in zip(judged, requests))


def test_without_a_critic_the_weight_changes_nothing(tiny_model_dir):
    poet = poet_lib.load(tiny_model_dir)
    assert poet.critic is None
    options = dict(form="wujue", rhyme=True, num=3, seed=2)
    assert [p.text for p in poet.write(**options, critic_weight=5.0)] == [
        p.text for p in poet.write(**options, critic_weight=0.0)]


def test_a_critic_of_another_vocabulary_is_refused_with_the_command_that_retrains_it(criticised, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(criticised, copy)
    path = copy / critic_lib.FOLDER / critic_lib.CONFIG
    record = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**record, "vocab_fingerprint": "0" * 16}), encoding="utf-8")
    with pytest.raises(PoetryError, match="python -m poetry_rnn.critic --model_dir"):
        poet_lib.load(str(copy)).critic


def test_the_command_line_trains_a_critic_and_names_a_bad_flag(tiny_model_dir, tmp_path):
    bundle = tmp_path / "model"
    shutil.copytree(tiny_model_dir, bundle)
    data = os.path.join(os.path.dirname(tiny_model_dir), "poems.txt")
    small = ["--model_dir", str(bundle), "--data", data, "--units", "4", "--embed_dim", "4", "--epochs", "1"]
    done = run_module("critic", *small, "--drafts_per_form", "12", "--forms", "wujue")
    assert done.returncode == 0, done.stderr
    assert "held-out accuracy" in done.stdout and (bundle / "critic" / "weights.npz").exists()
    assert (bundle / "overuse.npz").exists()
    bad = run_module("critic", *small, "--forms", "sonnet")
    assert bad.returncode != 0 and "--forms must be some of" in bad.stderr.strip().splitlines()[-1]
    bad = run_module("critic", *small, "--learn", "critic,taste")
    assert bad.returncode != 0 and "--learn must be some of" in bad.stderr.strip().splitlines()[-1]


def test_drafts_written_to_keywords_are_not_judged(criticised):
    # The critic prefers surprise and let keywords go; a user's keywords rank as they did without it.
    poet = poet_lib.load(criticised)
    poet.critic = RecordingCritic()
    options = dict(form="wujue", rhyme=True, num=2, seed=5, critic_weight=100.0)
    poet.write(**options, keywords=["春"])
    assert not poet.critic.asked
    poet.write(**options)
    assert poet.critic.asked  # the same ask without keywords is judged
