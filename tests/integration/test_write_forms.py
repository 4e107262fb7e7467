"""write with forms, rhyme, tones, acrostics, templates, jsonl and titles, as a user runs it."""

import json

import numpy as np
import pytest
import tensorflow as tf

from poetry_rnn.generation import drafts, sampler
from poetry_rnn.model import store, vocab
from poetry_rnn.verse import poem_request, prosody, validator
from poetry_rnn import options, poet as poet_lib
from poetry_rnn.options import SamplingOptions
from poetry_rnn.corpus import titles
from poetry_rnn.training import trainer
from conftest import run_module, synthetic_poems, write_poems


def test_constrained_poems_from_the_command_line_are_valid(tiny_model_dir):
    result = run_module("write", "--model_dir", tiny_model_dir, "--begin", "春", "花", "--form", "qijue", "--rhyme",
                        "--tones", "--num", "3", "--format", "jsonl", "--seed", "4")
    assert result.returncode == 0, result.stderr
    poems = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(poems) == 6 and [p["begin"] for p in poems] == ["春"] * 3 + ["花"] * 3
    for poem in poems:
        request = poem_request.PoemRequest(form="qijue", begin=poem["begin"], rhyme=True, tones="loose",
                                          tone_start=poem["tone_start"])
        assert validator.check_poem(poem["text"], request) == []
        assert len(poem["lines"]) == 4 and poem["rhyme_group"]
        assert len(poem["logprobs"]) == len(poem["text"]) + 1  # every character and EOS
        assert poem["mean_logprob"] == pytest.approx(sum(poem["logprobs"]) / len(poem["logprobs"]), abs=1e-3)


def test_acrostic_and_template_from_the_command_line(tiny_model_dir, tmp_path):
    out = tmp_path / "poems.txt"
    result = run_module("write", "--model_dir", tiny_model_dir, "--acrostic", "春花秋月", "--form", "wujue", "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = [line for line in out.read_text().split() if not line.startswith("《")]  # a subject it may have drawn
    assert [line[0] for line in lines] == list("春花秋月") and all(len(line) == 6 for line in lines)
    result = run_module("write", "--model_dir", tiny_model_dir, "--template", "春风???，???月明。", "--subject", "none")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.split()
    assert first.startswith("春风") and first.endswith("，") and second.endswith("月明。") and len(second) == 6


def test_title_conditioning_primes_with_the_title_and_is_refused_without_it(tiny_model_dir, tmp_path):
    data = write_poems(tmp_path / "poems.txt", synthetic_poems(200))
    model_dir = str(tmp_path / "titled")
    trainer.fit(data, model_dir, trainer.TrainOptions.of(units=16, embed_dim=8, layers=1, epochs=1, condition="title", samples=0, quiet=True))
    loaded = store.load(model_dir)
    assert loaded.config.condition == "title"  # the decoder reads the prompt as the model's config says
    poem = drafts.generate(sampler.Decoder(loaded.model), loaded.vocab, [poem_request.PoemRequest(title="题1", form="wujue")],
                           SamplingOptions.plain(seed=0))[0]
    assert poem.title == "题1" and not validator.check_poem(poem.content, poem_request.PoemRequest(form="wujue"))
    unknown = run_module("write", "--model_dir", model_dir, "--title", "题ℤ", "--form", "wujue")
    assert unknown.returncode == 2 and "title character 'ℤ' is not in the model's vocabulary" in unknown.stderr


def test_a_model_fine_tuned_to_keywords_writes_to_keywords_and_titles(tiny_model_dir, tmp_path):
    data = write_poems(tmp_path / "poems.txt", synthetic_poems(200))
    model_dir = str(tmp_path / "keyed")
    trainer.fit(data, model_dir, trainer.TrainOptions.of(units=32, embed_dim=16, layers=2, epochs=1, batch_size=32,
                                                         condition="keywords", init_from=tiny_model_dir, samples=0,
                                                         quiet=True))
    keyword, title = [c for c in sorted(store.load(model_dir).vocab.chars) if prosody.is_han(c)][:2]
    result = run_module("write", "--model_dir", model_dir, "--keywords", keyword, title, "--title", title + keyword,
                        "--form", "qijue", "--rhyme", "--num", "2", "--format", "jsonl", "--seed", "3")
    assert result.returncode == 0, result.stderr
    for poem in map(json.loads, result.stdout.splitlines()):
        assert poem["title"] == title + keyword and poem["rhyme_group"]
        assert not validator.check_poem(poem["text"], poem_request.PoemRequest(form="qijue", rhyme=True))
    bad = run_module("write", "--model_dir", model_dir, "--keywords", "a")
    assert bad.returncode == 2 and "--keywords takes Han characters, got 'a'" in bad.stderr


def test_a_prompt_bag_model_reads_its_prompt_at_every_step_of_decoding_as_in_training(tiny_model_dir, tmp_path):
    data = write_poems(tmp_path / "poems.txt", synthetic_poems(200))
    model_dir = str(tmp_path / "bagged")
    trainer.fit(data, model_dir, trainer.TrainOptions.of(units=32, embed_dim=16, layers=2, epochs=1, batch_size=32,
                                                         condition="keywords", prompt_bag=True, init_from=tiny_model_dir,
                                                         learning_rate=0.05, samples=0, quiet=True))
    loaded = store.load(model_dir)
    keyword, title = [c for c in sorted(loaded.vocab.chars) if prosody.is_han(c)][:2]
    request = poem_request.PoemRequest(form="wujue", keywords=keyword, title=title + keyword)
    assert loaded.config.condition == "keywords" and loaded.config.prompt_bag  # what the decoder reads the prompt by
    poem = drafts.generate(sampler.Decoder(loaded.model), loaded.vocab, [request], SamplingOptions.plain(seed=1))[0]
    # The decoder's log-probabilities are the model's own on the whole sequence, prompt and all,
    # and would not be without the bag (trained away from zero).
    ids = np.array([[vocab.BOS, *loaded.vocab.encode(poem.content), vocab.EOS,
                     *loaded.vocab.encode(title + keyword + keyword), vocab.EOS]], np.int32)  # as encode_poems lays it out
    def scored(model):
        logits = tf.nn.log_softmax(tf.cast(model(ids[:, :-1])[0], tf.float32)).numpy()[0]
        return logits[np.arange(len(ids[0]) - 1), ids[0, 1:]][: len(poem.logprobs)]
    np.testing.assert_allclose(poem.logprobs, scored(loaded.model), atol=1e-4)
    for variable in loaded.model.weights:
        if "bag_" in variable.path:
            variable.assign(tf.zeros_like(variable))
    assert np.abs(scored(loaded.model) - poem.logprobs).max() > 1e-3
    refused = run_module("train", "--data", data, "--model_dir", str(tmp_path / "x"), "--prompt_bag")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].endswith(
        "--prompt_bag needs --condition title or keywords and --input embedding")


def test_the_keyword_bonus_pulls_keywords_into_poems_of_any_model(tiny_model_dir):
    poet = poet_lib.load(tiny_model_dir)
    keywords = [c for c in sorted(poet.loaded.vocab.chars) if prosody.is_han(c)][-2:]
    def share(bonus):
        poems = poet.write(form="wujue", keywords=keywords, num=24, seed=2, keyword_bonus=bonus, best_of=1)
        return sum(all(k in p.text for k in keywords) for p in poems) / len(poems)
    pulled, free = share(20.0), share(0.0)
    assert pulled == 1.0 and free < 0.5


def test_any_poem_model_writes_towards_its_title_and_prints_it(tiny_model_dir):
    poet = poet_lib.load(tiny_model_dir)  # unconditioned: the title is pulled in, never read as a prompt
    han = sorted((c for c in poet.loaded.vocab.chars if prosody.is_han(c)), key=titles.weight)
    topic, genre = han[-1], han[0]  # the character poets most and least often write into the poem
    assert titles.weight(topic) == 1.0 and titles.weight(genre) < 0.2
    title = genre + topic
    def poems(**options):
        return poet.write(form="wujue", rhyme=True, num=24, seed=2, best_of=1, **options)
    def share(written, c):
        return sum(c in p.text for p in written) / len(written)
    pulled, without = poems(title=title, title_bonus=20.0), poems(subject="none")
    assert all(p.title == title for p in pulled)
    assert share(pulled, topic) == 1.0 and share(without, topic) < 0.5
    assert share(pulled, genre) < 1.0  # its share of the bonus is small: pulled, not forced
    assert [p.text for p in poems(title=title, title_bonus=0.0)] == [p.text for p in without]
    assert not any(p.title for p in without)
    result = run_module("write", "--model_dir", tiny_model_dir, "--title", title, "--form", "wujue", "--seed", "1")
    assert result.returncode == 0 and result.stdout.startswith(f"《{title}》"), result.stderr
    too_long = run_module("write", "--model_dir", tiny_model_dir, "--title", "春" * (options.MAX_TITLE + 1))
    assert too_long.returncode == 2 and f"--title takes at most {options.MAX_TITLE} characters" in too_long.stderr
