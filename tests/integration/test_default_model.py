"""The shipped model in checkpoints/default: loads, writes, obeys forms (runs in CI)."""

import json
import os

import numpy as np
import pytest

from poetry_rnn.generation import drafts, sampler
from poetry_rnn.model import store
from poetry_rnn.verse import forms, poem_request, validator
from poetry_rnn.model.store import DEFAULT_MODEL_DIR
from poetry_rnn.options import SamplingOptions
from conftest import run_module


@pytest.fixture(scope="module")
def default_model():
    return store.load(DEFAULT_MODEL_DIR)


@pytest.mark.parametrize("folder", [DEFAULT_MODEL_DIR, os.path.join(DEFAULT_MODEL_DIR, store.CI_COMPANION)])
def test_the_shipped_files_are_small_and_hold_no_optimizer_state(folder):
    names = sorted(n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n)))
    assert {"config.json", "vocab.txt", "weights.npz", "README.md"} <= set(names)
    assert not {"ckpt", "logs"} & set(os.listdir(folder))
    assert sum(os.path.getsize(os.path.join(folder, n)) for n in names) < 25 * 2**20
    with np.load(os.path.join(folder, "weights.npz")) as stored:
        assert {stored[k].dtype for k in stored.files} == {np.dtype("float16")}


def test_float16_weights_load_as_float32(default_model):
    assert all(v.dtype == "float32" for v in default_model.model.weights)
    with np.load(os.path.join(DEFAULT_MODEL_DIR, "weights.npz")) as stored:
        assert {stored[k].dtype for k in stored.files} == {np.dtype("float16")}


def test_writes_four_poems_for_four_begin_characters():
    result = run_module("write", "--begin", "日", "红", "山", "夜", "--seed", "0")
    assert result.returncode == 0, result.stderr
    poems = result.stdout.strip().split("\n\n")
    assert all(p.startswith("《") for p in poems)  # each drew a subject, printed above it
    assert [p.splitlines()[1][0] for p in poems] == list("日红山夜")
    assert all(p.splitlines()[-1][-1] in "。？！" for p in poems)


def test_writes_a_valid_constrained_qijue(default_model):
    request = poem_request.PoemRequest(form="qijue", rhyme=True, tones="loose", acrostic="春夏秋冬")
    poems = drafts.generate(sampler.Decoder(default_model.model), default_model.vocab, [request] * 4,
                            SamplingOptions.plain(seed=0))  # the prompt as the model reads it: from its config
    assert all(poem.ended and validator.check_poem(poem.content, request) == [] for poem in poems)


def test_the_shipped_config_names_no_path_of_the_machine_that_trained_it():
    with open(os.path.join(DEFAULT_MODEL_DIR, "config.json"), encoding="utf-8") as handle:
        train = json.load(handle)["train"]
    assert not [value for value in train.values() if isinstance(value, str) and os.path.isabs(value)]


def test_the_shipped_model_repeats_a_character_within_a_couplet_less_at_the_defaults(default_model):
    request = poem_request.PoemRequest(form="wulv", rhyme=True)
    decoder = sampler.Decoder(default_model.model)

    def repeating_couplets(sampling):
        poems = drafts.generate(decoder, default_model.vocab, [request] * 48, sampling)
        return sum(sum(forms.couplet_repeats(poem.content)) for poem in poems)

    off = repeating_couplets(SamplingOptions(seed=4, best_of=1, couplet_repeat_penalty=0.0))
    assert off >= 10  # of 192 couplets: the model alone says a character twice in about one in six
    assert repeating_couplets(SamplingOptions(seed=4, best_of=1)) <= off / 2
