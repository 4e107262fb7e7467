"""The SavedModel export: loaded with TensorFlow alone, it writes the poems ``write`` writes."""

import json
import os
import subprocess
import sys

import pytest

from poetry_rnn.generation import drafts, sampler
from poetry_rnn.options import SamplingOptions
from poetry_rnn.serving import savedmodel
from poetry_rnn.verse import forms, poem_request, validator
from poetry_rnn.model import store
from poetry_rnn.infra.errors import PoetryError
from conftest import run_module

# Runs with only TensorFlow: no poetry_rnn on the path, cwd outside the repository.
CLIENT = r"""
import json, sys
import tensorflow as tf
assert "poetry_rnn" not in sys.modules
generate = tf.saved_model.load(sys.argv[1]).signatures["generate"]
def call(begin, form, temperature=0.8, seed=1):
    out = generate(begin=tf.constant(begin, tf.string), form=tf.constant(form), temperature=tf.constant(temperature, tf.float32),
                   seed=tf.constant(seed, tf.int64))
    return [p.decode("utf-8") for p in out["poems"].numpy()]
def error(*args):
    try:
        call(*args)
    except tf.errors.InvalidArgumentError as e:
        return next((line for line in e.message.splitlines() if "assertion failed" in line), e.message)
    return None
report = {
    "qijue": call(["春", "花", "月夜"], "qijue"),
    "free": call(["春", ""], "free", 1.0, 7),
    "greedy": call(["山"], "wujue", 0.0, 5) + call(["山"], "wujue", 0.0, 6),
    "unknown_form": error(["春"], "sonnet"),
    "unknown_char": error(["春", "龘"], "qijue"),
    "too_long": error(["春花秋月何时了往"], "qijue"),
    "not_han": error(["，"], "wujue"),
    "nan_temperature": error(["春"], "wujue", float("nan")),
    "negative_temperature": error(["春"], "wujue", -1.0),
    "poetry_rnn_imported": "poetry_rnn" in sys.modules,
}
print(json.dumps(report, ensure_ascii=False))
"""


@pytest.fixture(scope="module")
def exported(tiny_model_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("exported") / "poet" / "1")
    savedmodel.export(tiny_model_dir, out)
    return out


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = subprocess.run([sys.executable, "-c", CLIENT, exported], capture_output=True, text=True, env=env,
                            cwd=str(tmp_path_factory.mktemp("client")), timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_saved_model_writes_qijue_without_poetry_rnn(served):
    assert not served["poetry_rnn_imported"]
    for begin, poem in zip(["春", "花", "月夜"], served["qijue"]):
        assert forms.classify(poem) == "qijue", poem
        lines = forms.split_lines(poem)
        assert len(lines) == 4 and all(len(line) == 8 for line in lines)
        assert [line[-1] for line in lines] == list("，。，。")
        assert poem.startswith(begin)
        assert validator.check_poem(poem, poem_request.PoemRequest(form="qijue", begin=begin)) == []  # two uses at most


def test_the_saved_model_runs_the_same_decoder_as_write(served, tiny_model_dir):
    loaded = store.load(tiny_model_dir)
    requests = [poem_request.PoemRequest(form="qijue", begin=b) for b in ["春", "花", "月夜"]]
    decoder = sampler.Decoder(loaded.model)
    written = drafts.generate(decoder, loaded.vocab, requests, SamplingOptions.plain(temperature=0.8, seed=1))
    assert [p.content for p in written] == served["qijue"]
    requests = [poem_request.PoemRequest(begin=b, max_len=savedmodel.DEFAULT_FREE_MAX_LEN) for b in ["春", ""]]
    written = drafts.generate(decoder, loaded.vocab, requests, SamplingOptions.plain(temperature=1.0, seed=7))
    assert [p.content for p in written] == served["free"]
    assert served["free"][0].startswith("春") and all(served["free"])


def test_greedy_ignores_the_seed_and_keeps_the_two_use_limit(served, tiny_model_dir):
    first, second = served["greedy"]
    assert first == second and forms.classify(first) == "wujue"
    # A greedy tiny model repeats itself; the exported limit is what stops it, as in write.
    loaded = store.load(tiny_model_dir)
    unlimited = drafts.generate(sampler.Decoder(loaded.model), loaded.vocab,
                                [poem_request.PoemRequest(form="wujue", begin="山", allow_repeats=True)],
                                SamplingOptions.plain(temperature=0.0))[0].content
    assert validator.check_poem(unlimited, poem_request.PoemRequest(form="wujue", begin="山")) != []
    assert validator.check_poem(first, poem_request.PoemRequest(form="wujue", begin="山")) == []


def test_bad_requests_fail_with_a_message(served):
    assert "unknown form" in served["unknown_form"]
    for key in ("unknown_char", "too_long", "not_han"):
        assert served[key] and "begin character(s) not allowed" in served[key], key
    assert "龘" in served["unknown_char"]
    for key in ("nan_temperature", "negative_temperature"):
        assert served[key] and "temperature must be a finite number >= 0" in served[key], key


def test_export_refuses_an_existing_version_folder(exported, tiny_model_dir):
    with pytest.raises(PoetryError, match="already exists"):
        savedmodel.export(tiny_model_dir, exported)


def test_the_export_command(tiny_model_dir, tmp_path):
    out = str(tmp_path / "poet" / "1")
    result = run_module("export", "--model_dir", tiny_model_dir, "--out", out)
    assert result.returncode == 0, result.stderr
    assert os.path.exists(os.path.join(out, "saved_model.pb"))


def test_compact_export_is_float16_and_writes_like_the_original(tiny_model_dir, tmp_path):
    from poetry_rnn.generation import drafts, sampler
    from poetry_rnn.model import store
    from poetry_rnn.options import SamplingOptions
    from poetry_rnn.verse import poem_request
    from poetry_rnn.serving.savedmodel import export_compact

    out = tmp_path / "compact"
    out.mkdir()
    (out / "README.md").write_text("model card")
    export_compact(tiny_model_dir, str(out))
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "training_poems.npy", "vocab.txt",
                                                    "weights.npz"]
    original, compact = store.load(tiny_model_dir), store.load(str(out))
    request = [poem_request.PoemRequest(form="wujue")] * 4
    greedy = SamplingOptions.plain(temperature=0)
    for a, b in zip(drafts.generate(sampler.Decoder(original.model), original.vocab, request, greedy),
                    drafts.generate(sampler.Decoder(compact.model), compact.vocab, request, greedy)):
        assert a.content == b.content  # greedy poems survive the float16 round trip


def test_a_shipped_config_names_no_path_of_the_training_machine():
    from poetry_rnn.model import store

    assert store.shippable_settings({"init_from": "/work/runs/finetune", "epochs": 4}) == {"init_from": "finetune", "epochs": 4}
    assert store.shippable_settings({"init_from": "checkpoints/default"})["init_from"] == "checkpoints/default"
    assert store.shippable_settings({"init_from": ""})["init_from"] == ""
    assert "init_from" not in store.shippable_settings({"corpus": "poems"})
