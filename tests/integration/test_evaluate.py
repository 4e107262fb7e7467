import json
import math
import shutil

import pytest
import tensorflow as tf

from poetry_rnn.corpus import split
from poetry_rnn.corpus import reading
from poetry_rnn.training import dataset
from poetry_rnn.evaluation import report as report_lib
from poetry_rnn.model import store
from poetry_rnn.verse import forms, poem_request
from poetry_rnn.evaluation import quality
from conftest import run_module, synthetic_poems, write_poems


def test_perplexity_is_exp_of_mean_nll_computed_poem_by_poem(tiny_model_dir, tmp_path):
    loaded = store.load(tiny_model_dir)
    poems = [reading.CorpusPoem(t, c) for t, c in synthetic_poems(30, seed=9)]
    report = report_lib.perplexity_report(loaded, poems)
    total, count = 0.0, 0
    for seq in dataset.encode_poems(poems, loaded.vocab):
        logits, _ = loaded.model(seq[None, :-1])
        logp = tf.nn.log_softmax(logits[0]).numpy()
        total -= sum(logp[t, seq[t + 1]] for t in range(len(seq) - 1))
        count += len(seq) - 1
    assert report["tokens"] == count
    assert report["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-4)


def test_unknown_characters_are_counted(tiny_model_dir):
    loaded = store.load(tiny_model_dir)
    report = report_lib.perplexity_report(loaded, [reading.CorpusPoem("", "龘龘春风，花月夜。")])
    assert report["unknown"] == 2


def test_a_keywords_model_is_scored_unprompted_and_prompted_and_the_prompt_is_never_scored(tiny_model_dir, tmp_path):
    keyed = tmp_path / "keyed"
    shutil.copytree(tiny_model_dir, keyed)
    config = json.loads((keyed / "config.json").read_text())
    config["model"]["condition"] = "keywords"  # shapes no weights: the same network, read with prompts
    (keyed / "config.json").write_text(json.dumps(config))
    poems = [reading.CorpusPoem(t, c) for t, c in synthetic_poems(40, seed=5)]
    plain = report_lib.split_report(store.load(tiny_model_dir), poems)
    report = report_lib.split_report(store.load(str(keyed)), poems)
    assert "prompted" not in plain and report["perplexity"] == pytest.approx(plain["perplexity"])
    prompted = report["prompted"]
    # content and EOS only, prompted or not
    assert (prompted["tokens"], prompted["unknown"]) == (report["perplexity"]["tokens"], report["perplexity"]["unknown"])
    assert prompted["perplexity"] != pytest.approx(report["perplexity"]["perplexity"])
    again = report_lib.split_report(store.load(str(keyed)), poems)["prompted"]
    assert again == prompted  # the same prompts every run
    assert "| RNN, prompted as in training" in "\n".join(report_lib.perplexity_table({**report, "data": "d"}))


def test_the_report_has_every_field(tiny_model_dir, tmp_path):
    poems = synthetic_poems(400)
    # A quarter more poems that quote another poem's first line, as the corpus's near-duplicates do.
    quoting = [(f"引{i}", a.split("，")[0] + "，" + b.split("，", 1)[1]) for i, ((_, a), (_, b)) in
               enumerate(zip(poems[::4], poems[1::4]))]
    data = write_poems(tmp_path / "poems.txt", poems + quoting)
    request = poem_request.PoemRequest(form="wujue", rhyme=True, tones="loose")
    report = report_lib.evaluate(tiny_model_dir, corpus_path=data, samples=8, form_requests=[request], ngram_order=3)
    assert {"perplexity", "ngram", "ratio_to_ngram", "samples", "sampling"} <= set(report)
    assert report["ngram"]["order"] == 3 and report["ngram"]["perplexity"] > 1
    # Both held-out halves, each with its own n-gram figure from the same fitted baseline.
    valid, test = report["perplexity"], report["test"]["perplexity"]
    assert valid["poems"] and test["poems"] and valid["poems"] + test["poems"] < 500 * 0.05
    assert report["test"]["ngram"]["tokens"] == test["tokens"] and report["test"]["ratio_to_ngram"] > 0
    # Held-out poems that share no line with training: the corpus's own poems, minus those holding a training line.
    all_poems, _ = reading.read_poems(data)
    train, held_out = split.split_train_valid(all_poems, store.load(tiny_model_dir).train["valid_fraction"])
    index = quality.TrainingIndex(p.content for p in train)
    unseen = [p for p in held_out if not any(t in index.lines for t in forms.line_texts(p.content))]
    assert report["unseen"]["perplexity"]["poems"] == len(unseen) and 0 < len(unseen) < len(held_out)
    assert report["unseen"]["ratio_to_ngram"] > 0
    free, wujue = report["samples"]
    for block in (free, wujue):  # the written text and real poems under the same 5-gram
        assert block["generated"]["ngram_perplexity"] > 1 and block["real"]["ngram_perplexity"] > 1
    for block in (free, wujue):
        assert {"ended", "form_valid", "consistent_length", "rhyme_rate", "heard_rhyme_rate", "pingshui_rhyme_rate",
                "tone_agreement", "copied_lines", "copied_poems", "repetition", "distinct_2"} <= set(block["generated"])
        assert block["real"]["poems"] > 0
    assert wujue["generated"]["constraints_valid"] == 1.0
    assert wujue["generated"]["constraints_heard"] == 1.0  # free characters are heard as the masks chose them
    assert wujue["generated"]["form_valid"] == 1.0
    text = report_lib.markdown(report)
    assert "Kneser-Ney" in text and "constraints met" in text and "(test split)" in text and "sharing no line" in text
    assert "| 5-gram perplexity per character | " in text and "%" not in text.split("5-gram perplexity per character")[1].split("\n")[0]
    json.dumps(report)  # every figure serialises


def test_cli_writes_markdown_and_json(tiny_model_dir, tmp_path):
    data = write_poems(tmp_path / "poems.txt", synthetic_poems(100))
    result = run_module("evaluate", "--model_dir", tiny_model_dir, "--data", data, "--out", str(tmp_path / "eval"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["perplexity"]["poems"] == 100
    assert (tmp_path / "eval" / "report.md").read_text().startswith("# Evaluation")
