"""The over-use table and its processor: the model's favourite characters pulled down, inside the nucleus only."""

import dataclasses
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from poetry_rnn import poet as poet_lib
from poetry_rnn.evaluation import critic_training
from poetry_rnn.generation import critic as critic_lib, overuse, processors
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model.vocab import Vocab
from poetry_rnn.verse import poem_request, validator

NEG_INF = processors.NEG_INF


def test_the_table_gives_each_form_the_log_of_how_much_more_its_drafts_use_a_character():
    vocab = Vocab.build(["山月花人。，"], min_count=1)
    drafts = {"wujue": ["山山山月"] * 50, "free": ["花人"] * 10}
    real = {"wujue": ["山月月月"] * 50, "free": ["花人"] * 10, "qijue": ["人人"]}  # qijue: no drafts, no row
    table = overuse.OveruseTable.learn(vocab, drafts, real)
    assert table.form_names == ("wujue", "free") and not table.bias[0].any()
    row = table.bias[1]
    mountain, moon = 150 / 200 * 200, 50 / 200 * 200  # drafts' uses against the real uses scaled to the drafts' length
    assert row[vocab.id("山")] == pytest.approx(min(np.log((mountain + 20) / (50 + 20)), overuse.CLIP))
    assert row[vocab.id("月")] == pytest.approx(np.log((moon + 20) / (150 + 20)))
    assert row[vocab.id("花")] == 0 and row[vocab.id("。")] == 0  # unused on both sides; not a Han character
    assert np.allclose(table.bias[2], 0)  # the free drafts use what real poems use
    assert np.abs(table.bias).max() <= overuse.CLIP
    requests = [poem_request.PoemRequest(form="wujue"), poem_request.PoemRequest(),
                poem_request.PoemRequest(form="qijue"), poem_request.PoemRequest(template="山??，??。")]
    assert table.rows(requests).tolist() == [1, 2, 0, 0]  # a form it does not know and a template: row 0
    assert table.most("wujue", vocab, 1) == ("山", "月")


def test_the_processor_pulls_inside_the_content_of_rows_with_a_form_and_keeps_masks():
    bias = np.array([[0, 0, 0], [1.0, -0.5, 0]], np.float32)
    pull = processors.Overuse(bias=tf.constant(bias), row=tf.constant([1, 1, 0, 1]),
                              penalty=tf.constant([2.0, 0.0, 2.0, 2.0]))
    logits = tf.constant([[1.0, 1.0, NEG_INF]] * 4)
    step = processors.Step(tf.constant(3), None, tf.constant([True, True, True, False]), None)
    out = pull.apply(logits, (), step).numpy()
    assert out[0].tolist() == [-1.0, 2.0, NEG_INF]  # pulled by 2 times its row; the masked character stays masked
    assert (out[1:] == logits.numpy()[1:]).all()  # penalty 0; row 0 (no table for its form); still in the prompt


def test_the_processor_without_a_table_changes_nothing():
    class Plan:
        lengths, mask_table = np.zeros(3), np.zeros((1, 5), bool)

    arrays = processors.Overuse.from_plan(Plan, {"overuse_penalty": np.full(3, 1.0)})
    assert not arrays["penalty"].any() and arrays["bias"].shape == (1, 5)


@pytest.fixture(scope="module")
def pulled(tiny_model_dir, tmp_path_factory):
    bundle = tmp_path_factory.mktemp("overuse") / "model"
    shutil.copytree(tiny_model_dir, bundle)
    data = os.path.join(os.path.dirname(tiny_model_dir), "poems.txt")
    paths = critic_training.learn_from_drafts(str(bundle), data, critic_lib.CriticConfig(),
                                              critic_training.CriticData(drafts_per_form=60, forms="wujue,free",
                                                                         learn="overuse"), log=lambda *a: None)
    assert paths == [os.path.join(str(bundle), overuse.FILE)] and not os.path.exists(bundle / critic_lib.FOLDER)
    return str(bundle)


def test_the_penalty_changes_poems_of_a_learnt_form_never_their_form(pulled):
    poet = poet_lib.load(pulled)
    assert poet.overuse.form_names == ("wujue", "free")
    ask = poet_lib.make_ask(form="wujue", rhyme=True, num=6, seed=3, overuse_penalty=0.0)
    plain = poet.write(poem=ask.poem, sampling=ask.sampling)
    strong = poet.write(poem=ask.poem, sampling=dataclasses.replace(ask.sampling, overuse_penalty=5.0))
    assert [p.text for p in strong] != [p.text for p in plain]
    requests = poet_lib.poem_requests(ask.poem, ask.sampling.seed, poet.loaded.vocab)
    assert all(validator.check_poem(p.text, r) == [] for p, r in zip(strong, requests))
    favourite = poet.overuse.bias[1].argmax()
    uses = lambda poems: sum(p.text.count(poet.loaded.vocab.tokens[favourite]) for p in poems)  # noqa: E731
    assert uses(strong) <= uses(plain)


def test_poems_of_a_form_without_a_table_are_left_alone(pulled):
    poet = poet_lib.load(pulled)
    options = dict(form="qijue", rhyme=True, num=3, seed=2)
    assert [p.text for p in poet.write(**options, overuse_penalty=5.0)] == [
        p.text for p in poet.write(**options, overuse_penalty=0.0)]


def test_a_table_of_another_vocabulary_is_refused_with_the_command_that_learns_it_again(pulled, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(pulled, copy)
    table = overuse.load(str(copy), poet_lib.load(str(copy)).loaded.vocab)
    overuse.OveruseTable(table.form_names, table.bias, "0" * 16).save(str(copy))
    with pytest.raises(PoetryError, match="python -m poetry_rnn.critic --model_dir"):
        poet_lib.load(str(copy)).overuse


def test_a_bad_penalty_names_the_option():
    with pytest.raises(PoetryError, match="overuse_penalty"):
        poet_lib.make_ask(overuse_penalty=-1.0)
