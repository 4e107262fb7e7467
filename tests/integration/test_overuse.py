"""The over-use table and its processor: the model's favourite characters pulled down, inside the nucleus only."""

import dataclasses
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from poetry_rnn import poet as poet_lib
from poetry_rnn.evaluation import critic_training
from poetry_rnn.generation import constraints, critic as critic_lib, overuse, processors
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model import store
from poetry_rnn.model.vocab import Vocab
from poetry_rnn.verse import poem_request, validator

NEG_INF = processors.NEG_INF


def test_the_table_gives_each_form_and_place_the_log_of_how_much_more_its_drafts_use_a_character():
    vocab = Vocab.build(["山月花人。，"], min_count=1)
    drafts = {"wujue": ["山月花，山花月。"] * 50, "free": ["花人人"] * 10}
    real = {"wujue": ["月山花，花山月。"] * 50, "free": ["花花人"] * 10, "qijue": ["人人"]}  # qijue: no drafts, no row
    table = overuse.OveruseTable.learn(vocab, drafts, real)
    assert table.form_names == ("wujue", "free") and not table.bias[0].any()
    assert table.bias.shape == (1 + 2 * len(overuse.PLACES), len(vocab))
    inside, start, end = (table.row("wujue", p) for p in ("inside", "line start", "line end"))
    mountain, moon, flower = (vocab.id(c) for c in "山月花")
    # Lines begin with 山 100 times in the drafts, never in the real poems (which begin with 月 and 花 50 each).
    assert start[mountain] == pytest.approx(np.log((100 + 20) / (0 + 20)))
    assert start[moon] == start[flower] == pytest.approx(np.log(20 / (50 + 20)))
    assert inside[moon] == pytest.approx(np.log((50 + 20) / 20)) and inside[mountain] == pytest.approx(np.log(20 / 120))
    assert not end.any()  # both end their lines with 花 and 月 50 times each
    assert inside[vocab.id("。")] == 0 and inside[vocab.id("人")] == 0  # not a Han character; not used at all
    # A free poem's line ends may be anywhere, so they count inside: 人 20 times there against 10, and no end row.
    free_inside, free_end = table.row("free", "inside"), table.row("free", "line end")
    assert free_inside[vocab.id("人")] == pytest.approx(np.log(40 / 30)) and not free_end.any()
    assert np.abs(table.bias).max() <= overuse.CLIP
    requests = [poem_request.PoemRequest(form="wujue"), poem_request.PoemRequest(),
                poem_request.PoemRequest(form="qijue"), poem_request.PoemRequest(template="山??，??。")]
    assert table.rows(requests).tolist() == [1, 4, 0, 0]  # a form it does not know and a template: row 0
    assert table.most("wujue", vocab, 1, place="line start")[0] == "山"
    # A second round adds what drafts pulled by this table still over-use: here, as much again.
    again = overuse.OveruseTable.learn(vocab, drafts, real, base=table)
    assert np.allclose(again.bias, np.clip(2 * table.bias, -overuse.CLIP, overuse.CLIP))
    assert again.row("wujue", "line start")[mountain] == overuse.CLIP
    with pytest.raises(PoetryError, match="knows wujue, free"):
        overuse.OveruseTable.learn(vocab, {"wujue": drafts["wujue"]}, real, base=table)


def test_the_processor_pulls_by_the_place_in_the_line_inside_the_content_of_rows_with_a_form():
    places = {p: overuse.PLACES.index(p) for p in overuse.PLACES}
    bias = np.zeros((4, 3), np.float32)
    bias[1 + places["inside"]], bias[1 + places["line start"]], bias[1 + places["line end"]] = [1, -0.5, 0], [0, 3, 0], [5, 0, 0]
    line_last = np.zeros((6, 4), bool)
    line_last[2, 3] = True
    pull = processors.Overuse(bias=tf.constant(bias), row=tf.constant([1, 1, 1, 1, 0, 1]),
                              penalty=tf.constant([2.0, 2.0, 2.0, 0.0, 2.0, 2.0]), line_last=tf.constant(line_last),
                              han=tf.constant([True, True, False]))
    logits = tf.constant([[1.0, 1.0, NEG_INF]] * 6)
    step = processors.Step(tf.constant(3), tf.constant([0, 2, 0, 0, 0, 0]),
                           tf.constant([True, True, True, True, True, False]), None)
    out = pull.apply(logits, (), step).numpy()
    assert out[0].tolist() == [-1.0, 2.0, NEG_INF]  # inside a line: 2 times its row; the masked character stays masked
    assert out[1].tolist() == [1.0, -5.0, NEG_INF]  # after a token that is not a Han character: a line's start
    assert out[2].tolist() == [-9.0, 1.0, NEG_INF]  # the plan's line end
    assert (out[3:] == logits.numpy()[3:]).all()  # penalty 0; row 0 (no table for its form); still in the prompt


def test_the_plan_marks_the_last_character_of_each_line_of_a_shaped_poem_only(tiny_model_dir):
    vocab = store.load(tiny_model_dir).vocab
    plan = constraints.plan([poem_request.PoemRequest(form="wujue"), poem_request.PoemRequest(max_len=12)], vocab)
    assert np.flatnonzero(plan.line_last[0]).tolist() == [4, 10, 16, 22]  # 5 characters and a mark per line
    assert not plan.line_last[1].any()


def test_the_processor_without_a_table_changes_nothing():
    class Plan:
        lengths, mask_table, line_last, han = np.zeros(3), np.zeros((1, 5), bool), np.zeros((3, 4), bool), np.ones(5, bool)

    arrays = processors.Overuse.from_plan(Plan, {"overuse_penalty": np.full(3, 1.0)})
    assert not arrays["penalty"].any() and arrays["bias"].shape == (1, 5)


def learn_overuse(tiny_model_dir, folder, rounds):
    bundle = folder / "model"
    shutil.copytree(tiny_model_dir, bundle)
    data = os.path.join(os.path.dirname(tiny_model_dir), "poems.txt")
    what = critic_training.CriticData(drafts_per_form=60, forms="wujue,free", learn="overuse", overuse_rounds=rounds)
    paths = critic_training.learn_from_drafts(str(bundle), data, critic_lib.CriticConfig(), what, log=lambda *a: None)
    assert paths == [os.path.join(str(bundle), overuse.FILE)] and not os.path.exists(bundle / critic_lib.FOLDER)
    return str(bundle)


@pytest.fixture(scope="module")
def pulled(tiny_model_dir, tmp_path_factory):
    return learn_overuse(tiny_model_dir, tmp_path_factory.mktemp("overuse"), rounds=1)


def test_a_second_round_adds_what_drafts_pulled_by_the_first_still_over_use(pulled, tiny_model_dir, tmp_path):
    vocab = poet_lib.load(pulled).loaded.vocab
    first = overuse.load(pulled, vocab)
    second = overuse.load(learn_overuse(tiny_model_dir, tmp_path, rounds=2), vocab)
    assert second.form_names == first.form_names and not np.allclose(second.bias, first.bias)
    assert np.abs(second.bias).max() <= overuse.CLIP


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


def test_an_older_table_of_one_row_per_form_is_refused_with_the_command_that_learns_it_again(pulled, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(pulled, copy)
    table = overuse.load(str(copy), poet_lib.load(str(copy)).loaded.vocab)
    np.savez(copy / overuse.FILE, forms=np.array(table.form_names), bias=table.bias[:3],
             fingerprint=np.array(table.fingerprint))
    with pytest.raises(PoetryError, match="older table.*--learn overuse"):
        poet_lib.load(str(copy)).overuse


def test_a_bad_penalty_names_the_option():
    with pytest.raises(PoetryError, match="overuse_penalty"):
        poet_lib.make_ask(overuse_penalty=-1.0)
