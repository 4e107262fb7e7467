"""A free poem's shape, couplets and line length: drawn from real poems of its title, or given, held by the decoder."""

import collections
import random

import numpy as np
import pytest
import tensorflow as tf

from poetry_rnn import poet as poet_lib
from poetry_rnn.corpus import reading, titles
from poetry_rnn.generation import constraints, processors, sampler
from poetry_rnn.infra.errors import OptionError, PoetryError
from poetry_rnn.model import store, vocab as vocab_lib
from poetry_rnn.options import PoemOptions
from poetry_rnn.verse import forms, poem_request

NEG_INF = processors.NEG_INF


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return store.load(tiny_model_dir)


def test_the_processor_masks_the_end_until_the_couplets_are_closed_then_leaves_only_the_end(loaded):
    vocab = loaded.vocab
    closes = np.isin(vocab.tokens, list(forms.COUPLET_END))
    couplets = processors.Couplets(couplets=tf.constant([2, 2, 2, 0]), closes=tf.constant(closes))
    logits = np.zeros((4, len(vocab)), np.float32)
    logits[2] = NEG_INF
    logits[2, vocab_lib.EOS] = 0.0  # the poem's max_len: the end is all that is left
    closed = tf.constant([1, 2, 1, 5])
    step = processors.Step(tf.constant(9), tf.constant([vocab.id("。")] * 4), None, None)
    out = couplets.apply(tf.constant(logits), (closed,), step).numpy()
    assert out[:, vocab_lib.EOS].tolist() == [NEG_INF, 0.0, 0.0, 0.0]  # one to go; due; nothing else; no count
    assert np.isinf(np.delete(out[1], vocab_lib.EOS)).all()  # due: the end and nothing else
    assert (np.delete(out[[0, 3]], vocab_lib.EOS, axis=1) == 0.0).all()

    chosen = processors.Step(tf.constant(9), None, None, tf.constant([False, False, True, False]),
                             token=tf.constant([vocab.id("。"), vocab.id("，"), vocab.id("。"), vocab.id("。")]))
    (after,) = couplets.update((closed,), chosen)
    assert after.numpy().tolist() == [2, 2, 1, 6]  # 。 closes a couplet, ， does not; a finished row stays


def test_the_plan_counts_only_free_poems_and_the_natural_end_leaves_them_to_it(loaded):
    requests = [poem_request.PoemRequest(couplets=3, max_len=60), poem_request.PoemRequest(max_len=60),
                poem_request.PoemRequest(couplets=3, max_len=60, stop_at_eos=False), poem_request.PoemRequest(form="wujue")]
    plan = constraints.plan(requests, loaded.vocab)
    assert plan.couplets.tolist() == [3, 0, 0, 0]  # a lyrics stream never ends early
    assert processors.NaturalEnd.from_plan(plan, {"natural_end": True})["natural"].tolist() == [False, True, True, True]
    with pytest.raises(PoetryError, match="couplets shapes a free poem"):
        constraints.plan([poem_request.PoemRequest(form="wujue", couplets=2)], loaded.vocab)


@pytest.mark.parametrize("couplets", [1, 3])  # the tiny model only ever read poems of 2 and 4
def test_free_poems_end_after_exactly_their_couplets(loaded, couplets):
    decoder, begins = sampler.Decoder(loaded.model), "春花秋月" * 6

    def closed(**asked):  # couplets closed by each poem that ended before its max_len cut it
        plan = constraints.plan([poem_request.PoemRequest(begin=c, max_len=120, **asked) for c in begins], loaded.vocab)
        decoded = decoder.decode(plan, keys=np.arange(len(begins)), temperature=1.0, natural_end=True)
        texts = [loaded.vocab.decode(decoded.tokens[b][: decoded.length(b) - 1]) for b in range(len(begins))
                 if decoded.ended[b] and decoded.length(b) < plan.lengths[b]]
        assert texts and all(t[-1] in forms.COUPLET_END for t in texts)
        return [sum(t.count(m) for m in forms.COUPLET_END) for t in texts]

    held = closed(couplets=couplets)
    assert set(held) == {couplets} and len(held) > len(begins) / 2
    assert set(closed()) != {couplets}  # left to itself, the model ends elsewhere


def test_line_chars_hold_every_line_of_the_content_and_leave_the_mark_to_the_model(loaded):
    begins = "春花秋月" * 6  # the tiny model only ever read lines of 5 and 7
    plan = constraints.plan([poem_request.PoemRequest(begin=c, max_len=120, couplets=2, line_chars=6) for c in begins],
                            loaded.vocab)
    decoded = sampler.Decoder(loaded.model).decode(plan, keys=np.arange(len(begins)), temperature=1.0)
    texts = [loaded.vocab.decode(decoded.tokens[b][: decoded.length(b) - 1]) for b in range(len(begins))]
    assert all(titles.poem_shape(t) == (2, 6) for t in texts), texts
    assert {m for t in texts for m in t[6::7]} <= set(forms.PUNCTUATION)


def test_the_line_processor_counts_from_the_last_mark_inside_the_content(loaded):
    vocab = loaded.vocab
    han = np.array([len(t) == 1 and "\u4e00" <= t <= "\u9fff" for t in vocab.tokens])
    lines = processors.LineChars(line_chars=tf.constant([5, 5, 5, 0]), han=tf.constant(han))
    logits = tf.zeros((4, len(vocab)))
    step = processors.Step(tf.constant(3), None, tf.constant([True, True, False, True]), None)
    out = lines.apply(logits, (tf.constant([2, 5, 5, 5]),), step).numpy()
    comma = vocab.id("，")
    assert out[0, comma] == NEG_INF and out[0, vocab.id("春")] == 0.0 and out[0, vocab_lib.EOS] == 0.0  # mid-line
    assert out[1, comma] == 0.0 and np.isinf(out[1, han]).all()  # full: a mark
    assert (out[2:] == 0.0).all()  # in the prompt; no length
    chosen = processors.Step(tf.constant(3), None, tf.constant([True, True, False, True]), tf.constant([False] * 4),
                             token=tf.constant([vocab.id("春"), comma, vocab.id("春"), vocab.id("春")]))
    assert lines.update((tf.constant([2, 5, 0, 5]),), chosen)[0].numpy().tolist() == [3, 0, 0, 6]


def test_a_title_s_shapes_are_counted_and_drawn_from_its_poems(tmp_path):
    two, four = "春风入户来，山月照人归。" * 1, "山月照人归，春风入户来。" * 2
    poems = [reading.CorpusPoem(title="宫词", content=two)] * 90 + [reading.CorpusPoem(title="宫词", content=four)] * 10
    poems += [reading.CorpusPoem(title="送友人", content="江水流，春风入户来。")] * 2
    poems += [reading.CorpusPoem(title="句", content=two)] * 5
    path = str(tmp_path / "subjects.tsv")
    titles.write_subjects(path, poems)
    assert titles.read_subjects(path).shapes == ((((1, 5), 90), ((2, 5), 10)), (((1, 0), 2),))
    rng = random.Random(0)
    drawn = collections.Counter(titles.draw_shape(rng, "宫词", path) for _ in range(4000))
    assert drawn[1, 5] / 4000 == pytest.approx(0.9, abs=0.03) and set(drawn) == {(1, 5), (2, 5)}
    assert {titles.draw_shape(rng, "送友人", path) for _ in range(50)} == {(1, 0)}  # lines of 3 and 5: several
    # a title the table lacks: a subject drawn by weight (宫词 3, 送友人 2), then one of its poems' shapes
    unknown = collections.Counter(titles.draw_shape(rng, "咏梅", path) for _ in range(4000))
    assert unknown[1, 5] / 4000 == pytest.approx(0.6 * 0.9, abs=0.03)


def test_write_draws_shapes_for_free_poems_only_and_takes_given_numbers():
    drawn = poet_lib.poem_requests(PoemOptions(num=200), seed=1)
    shapes = collections.Counter((r.couplets, r.line_chars) for r in drawn)
    assert shapes[2, 7] > 20 and shapes[4, 5] > 20 and shapes[4, 7] > 20 and len(shapes) >= 8  # 绝句, 律诗, others
    assert all(r.couplets * 2 * ((r.line_chars or 5) + 1) <= r.max_len for r in drawn)
    assert [r.title for r in poet_lib.poem_requests(PoemOptions(num=200, couplets="model", line_chars="model"),
                                                    seed=1)] == [r.title for r in drawn]  # nothing else changes
    shape = lambda **asked: {(r.couplets, r.line_chars) for r in poet_lib.poem_requests(  # noqa: E731
        PoemOptions(num=20, **asked), seed=1)}
    assert shape(couplets="model", line_chars="model") == {(0, 0)} and shape(form="wulv") == {(0, 0)}
    assert shape(couplets=3, line_chars=7) == {(3, 7)}
    assert {c for c, _ in shape(line_chars=7)} - {0} and {n for _, n in shape(line_chars=7)} == {7}
    assert PoemOptions(couplets=3) == PoemOptions(couplets="3")  # a number from Python or JSON, text from a flag


@pytest.mark.parametrize("bad, named, problem", [
    (dict(couplets="many"), "couplets", "must be draw or model or a whole number in [1, 50], got 'many'"),
    (dict(couplets=0), "couplets", "must be draw or model or a whole number in [1, 50], got '0'"),
    (dict(line_chars=16), "line_chars", "must be draw or model or a whole number in [1, 15], got '16'"),
    (dict(couplets=4.5), "couplets", "must be draw or model or a whole number in [1, 50], got 4.5"),
    (dict(couplets=True), "couplets", "must be draw or model or a whole number in [1, 50], got True"),
    (dict(couplets="²"), "couplets", "must be draw or model or a whole number in [1, 50], got '²'"),  # a digit to isdigit
    (dict(couplets=4, form="wulv"), "couplets", "shapes a free poem: a form, template or tune shapes its own"),
    (dict(line_chars=7, cipai="浣溪沙"), "line_chars", "shapes a free poem: a form, template or tune shapes its own"),
    (dict(couplets=4, max_len=40), "couplets", "(4) need up to 48 characters, more than max_len (40)"),
    (dict(couplets=4, line_chars=7, max_len=60), "couplets", "(4) need up to 64 characters, more than max_len (60)"),
])
def test_a_bad_shape_names_the_option(bad, named, problem):
    with pytest.raises(OptionError) as error:
        PoemOptions(**bad)
    assert str(error.value) == f"--{named} {problem}"
    assert str(error.value.spoken_as("keyword")) == f"keyword argument {named!r} {problem}"


def test_the_json_api_takes_a_number_or_a_word():
    from poetry_rnn.serving import webapp

    body = webapp.PoemsRequest(couplets=4, line_chars="draw")  # refused as "not a valid string" before
    assert PoemOptions(couplets=body.couplets, line_chars=body.line_chars) == PoemOptions(couplets="4")
