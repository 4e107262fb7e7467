"""The char-RNN lessons: stream samplers, the carried state, stream training and writing."""

import dataclasses
import json
import random

import numpy as np
import pytest
import tensorflow as tf

from poetry_rnn import poet as poet_lib
from poetry_rnn.training import dataset, lessons, steps, trainer
from poetry_rnn.generation import drafts, sampler
from poetry_rnn.model import store
from poetry_rnn.model import vocab as vocab_lib
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model.network import ModelConfig, PoetryModel
from poetry_rnn.options import SamplingOptions
from conftest import CHARS, run_module

TINY = dict(corpus="lyrics", cell="rnn", input="onehot", units=32, layers=1, batch_size=4, num_steps=10,
            min_count=1, samples=0, quiet=True)


def write_stream(path, lines=12, repeats=8, seed=0):
    """A learnable stream: the same few random 'lyric lines', over and over."""
    rng = random.Random(seed)
    song = ["".join(rng.choice(CHARS[:20]) for _ in range(rng.randint(5, 9))) for _ in range(lines)]
    path.write_text("\n".join(song * repeats) + "\n", encoding="utf-8")
    return str(path)


# --- samplers ---------------------------------------------------------------


def test_random_windows_shift_by_one_and_cover_every_window():
    stream = np.arange(203, dtype=np.int32)  # value = position
    for seed in range(20):
        rng = np.random.default_rng(seed)
        batches = list(dataset.random_windows(stream, 1, 5, rng))
        inputs = np.concatenate([x for x, _ in batches])
        targets = np.concatenate([y for _, y in batches])
        np.testing.assert_array_equal(targets, inputs + 1)
        offset = int(inputs[:, 0].min())
        assert offset < 5 and np.all((inputs[:, 0] - offset) % 5 == 0)
        # With one window per batch nothing is dropped: every position from the
        # offset that fits in a whole window appears exactly once.
        fits = (len(stream) - 1 - offset) // 5 * 5
        np.testing.assert_array_equal(np.sort(inputs.ravel()), np.arange(offset, offset + fits))
        assert not np.array_equal(inputs[:, 0], np.sort(inputs[:, 0]))  # shuffled, not in text order


def test_random_windows_make_full_batches_and_cover_the_stream_over_epochs():
    stream = np.arange(500, dtype=np.int32)
    seen = np.zeros(len(stream), bool)
    for epoch in range(30):
        batches = dataset.stream_epoch(stream, 4, 7, "random", seed=1, epoch=epoch)
        windows = (len(stream) - 1 - int(min(x.min() for x, _ in batches))) // 7
        assert len(batches) == windows // 4
        for x, y in batches:
            assert x.shape == y.shape == (4, 7)
            np.testing.assert_array_equal(y, x + 1)
            seen[x.ravel()] = True
        starts = np.concatenate([x[:, 0] for x, _ in batches])
        assert len(set(starts.tolist())) == len(starts)  # non-overlapping
    assert seen[:-1].all()  # every position that can be an input was one


def test_consecutive_strips_continue_exactly_across_batches():
    stream = np.arange(1000, dtype=np.int32)
    batches = dataset.stream_epoch(stream, 4, 7, "consecutive", seed=0, epoch=3)
    assert len(batches) > 3
    for (x, y), (next_x, _) in zip(batches, batches[1:]):
        assert x.shape == (4, 7)
        np.testing.assert_array_equal(y, x + 1)
        np.testing.assert_array_equal(next_x[:, 0], x[:, -1] + 1)  # each row goes on where it stopped
    strips = np.concatenate([x for x, _ in batches], axis=1)
    np.testing.assert_array_equal(np.diff(strips, axis=1), 1)
    assert len(set(np.diff(strips[:, 0]).tolist())) == 1  # equal strips, one after another in the text


def test_an_epoch_is_fixed_by_seed_and_epoch():
    stream = np.arange(400, dtype=np.int32)
    for sampling in dataset.SAMPLINGS:
        a = dataset.stream_epoch(stream, 3, 6, sampling, seed=5, epoch=2)
        b = dataset.stream_epoch(stream, 3, 6, sampling, seed=5, epoch=2)
        c = dataset.stream_epoch(stream, 3, 6, sampling, seed=5, epoch=3)
        assert all(np.array_equal(p[0], q[0]) for p, q in zip(a, b))
        assert not all(np.array_equal(p[0], q[0]) for p, q in zip(a, c))


def test_without_a_random_offset_the_windows_stay_put_as_in_the_book():
    stream = np.arange(500, dtype=np.int32)
    for epoch in range(3):
        random_batches = dataset.stream_epoch(stream, 4, 7, "random", seed=1, epoch=epoch, random_offset=False)
        assert all(np.all(x[:, 0] % 7 == 0) for x, _ in random_batches)
    epochs = [dataset.stream_epoch(stream, 4, 7, "consecutive", seed=1, epoch=e, random_offset=False) for e in range(3)]
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(epochs[0], epochs[2])) and epochs[0][0][0][0, 0] == 0


def test_the_books_initialisation():
    model = tiny_model()
    lessons.initialize(model, "normal", seed=0)
    for variable in model.weights:
        value = variable.numpy()
        if variable.path.endswith("bias"):
            assert not value.any()
        else:
            assert 0.005 < value.std() < 0.015 and abs(value.mean()) < 0.005


def test_held_out_tail_and_eval_strips():
    stream = np.arange(1000, dtype=np.int32)
    train_ids, valid_ids = dataset.split_stream(stream, 0.1)
    assert len(valid_ids) == 100 and valid_ids[0] == 900 and train_ids[-1] == 899
    strips = dataset.eval_strips(valid_ids, 32, 35)
    assert strips and all(np.array_equal(y, x + 1) for x, y in strips)
    assert dataset.eval_strips(valid_ids[:1], 32, 35) == []


# --- the carried state --------------------------------------------------------


def tiny_model(cell="lstm"):
    return PoetryModel(ModelConfig(vocab_size=13, cell=cell, input="onehot", units=6, layers=2))


def test_consecutive_batches_carry_the_final_state_and_random_ones_start_from_zeros():
    model = tiny_model()
    optimizer = tf.keras.optimizers.SGD(0.1)
    optimizer.build(model.trainable_variables)
    train_step, _ = steps.make_steps(model, optimizer, tf.distribute.get_strategy(), steps.STREAMS)
    stream = np.random.default_rng(0).integers(5, 13, 600).astype(np.int32)
    zeros = model.initial_states(4)
    for sampling in dataset.SAMPLINGS:
        batches = dataset.stream_epoch(stream, 4, 8, sampling, seed=0, epoch=0)
        records = list(lessons.run_stream_batches(train_step, batches, sampling, zeros))
        assert len(records) == len(batches) > 2
        for (_, _, final), (_, initial, _) in zip(records, records[1:]):
            expected = final if sampling == "consecutive" else zeros
            for got, want in zip(tf.nest.flatten(initial), tf.nest.flatten(expected)):
                np.testing.assert_array_equal(got.numpy(), want.numpy())
            assert any(np.abs(s.numpy()).max() > 0 for s in tf.nest.flatten(final))
    assert train_step.experimental_get_tracing_count() == 1  # one trace for every batch of both samplings


def test_no_gradient_flows_back_into_the_previous_batch():
    model = tiny_model("gru")
    rng = np.random.default_rng(1)
    x1, x2, y2 = (tf.constant(rng.integers(5, 13, (3, 5)), tf.int32) for _ in range(3))
    start = tf.nest.map_structure(lambda s: tf.random.normal(tf.shape(s)), model.initial_states(3))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(start)
        _, carried = model(x1, start, training=True)  # batch 1, on the tape
        per_window, _, _, _, _ = steps.measure_stream(model, (x2, y2, carried), training=True)
        second = tf.reduce_mean(per_window)
        # The control: batch 2 without the stop; the tape does see the path back.
        logits, _ = model(x2, carried, training=True)
        leaky = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y2, logits))
    assert all(g is None for g in tf.nest.flatten(tape.gradient(second, carried)))
    assert all(g is None for g in tf.nest.flatten(tape.gradient(second, start)))
    assert all(g is not None for g in tf.nest.flatten(tape.gradient(leaky, start)))
    # The variables' gradient from the second loss is what the second batch alone
    # gives from a constant state: batch 1's use of the variables adds nothing.
    constant = tf.nest.map_structure(lambda s: tf.constant(s.numpy()), carried)
    with tf.GradientTape() as alone:
        alone_loss = tf.reduce_mean(steps.measure_stream(model, (x2, y2, constant), training=True)[0])
    chained = tape.gradient(second, model.trainable_variables)
    leaked = tape.gradient(leaky, model.trainable_variables)
    for a, b in zip(chained, alone.gradient(alone_loss, model.trainable_variables)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    assert any(not np.allclose(a.numpy(), b.numpy()) for a, b in zip(chained, leaked))


# --- training -------------------------------------------------------------------


@pytest.mark.parametrize("sampling", dataset.SAMPLINGS)
def test_a_tiny_stream_trains_and_its_loss_falls(tmp_path, sampling):
    data = write_stream(tmp_path / "lyrics.txt")
    options = trainer.TrainOptions.of(epochs=10, optimizer="adam", learning_rate=2e-2, sampling=sampling, **TINY)
    history = trainer.fit(data, str(tmp_path / "m"), options)
    assert len(history.train_loss) == 10
    assert history.train_loss[-1] < 0.6 * history.train_loss[0]
    assert np.isclose(np.log(history.train_perplexity[-1]), history.train_loss[-1], rtol=1e-4)  # token mean
    assert np.isfinite(history.valid_perplexity[-1])
    config = json.loads((tmp_path / "m" / "config.json").read_text(encoding="utf-8"))
    assert config["train"]["corpus"] == "lyrics" and config["train"]["sampling"] == sampling
    assert " " in store.load(str(tmp_path / "m")).vocab  # lines are joined with a space


def test_max_chars_keeps_the_first_characters(tmp_path):
    data = tmp_path / "lyrics.txt"
    data.write_text("春花秋月何时了\n" * 30 + "往事知多少\n" * 30, encoding="utf-8")
    trainer.fit(str(data), str(tmp_path / "m"), trainer.TrainOptions.of(epochs=1, max_chars=200, **TINY))
    loaded = store.load(str(tmp_path / "m"))
    assert "春" in loaded.vocab and "往" not in loaded.vocab
    assert loaded.train["max_chars"] == 200


def test_stream_runs_resume_by_epoch_and_inside_one(tmp_path):
    data = write_stream(tmp_path / "lyrics.txt")
    options = trainer.TrainOptions.of(epochs=1, sampling="consecutive", **TINY)
    whole = trainer.fit(data, str(tmp_path / "ref"), options)
    first = trainer.fit(data, str(tmp_path / "m"), dataclasses.replace(options, max_steps=3))
    assert first.step == 3
    resumed = trainer.fit(data, str(tmp_path / "m"), options)
    assert resumed.step == whole.step
    again = trainer.fit(data, str(tmp_path / "m"), dataclasses.replace(options, epochs=2))
    assert again.step == 2 * whole.step and len(again.train_loss) == 1


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(strategy="mirrored"), "one device"),
        (dict(condition="title"), "titles"),
        (dict(sampling="sideways"), "--sampling must be one of random, consecutive, got .sideways."),
        (dict(num_steps=400), "too short"),
        (dict(init="glorot"), "--init must be one of keras, normal, got .glorot."),
    ],
)
def test_bad_stream_options_are_one_clear_error(tmp_path, change, message):
    data = write_stream(tmp_path / "lyrics.txt")
    with pytest.raises(PoetryError, match=message):
        trainer.fit(data, str(tmp_path / "m"), trainer.TrainOptions.of(epochs=1, **{**TINY, **change}))


# --- writing ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lyrics_model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lyrics")
    data = write_stream(folder / "lyrics.txt")
    trainer.fit(data, str(folder / "m"), trainer.TrainOptions.of(epochs=4, learning_rate=2e-2, **TINY))
    return str(folder / "m")


def test_continue_streams_feeds_the_prefix_from_zero_state(lyrics_model_dir):
    loaded = store.load(lyrics_model_dir)
    prefix = "".join(loaded.vocab.chars[1:4])
    text = drafts.continue_streams(sampler.Decoder(loaded.model), loaded.vocab, [prefix], 12,
                                   SamplingOptions.plain(temperature=0.0))[0].content
    # d2l's predict_rnn by hand: the prefix through the model from zeros, then argmax
    # over ordinary characters (a stream has no EOS), one step at a time.
    ids = tf.constant([loaded.vocab.encode(prefix)], tf.int32)
    logits, states = loaded.model(ids)
    logits = logits[:, -1]
    out = prefix
    allowed = np.ones(len(loaded.vocab), bool)
    allowed[: len(vocab_lib.RESERVED)] = False
    for _ in range(12):
        token = int(np.argmax(np.where(allowed, logits.numpy()[0], -np.inf)))
        out += loaded.vocab.tokens[token]
        logits, states = loaded.model.step(tf.constant([token]), states)
    assert text == out


def test_a_stream_drafted_in_parts_is_the_stream_drafted_whole(lyrics_model_dir):
    poet = poet_lib.load(lyrics_model_dir)
    prefix = "".join(poet.loaded.vocab.chars[1:3])
    ask = poet_lib.make_ask(prefix=[prefix], length=30, num=2, best_of=5, seed=3)
    writing = poet_lib.Writing(poet, [ask], chunk_cost=2 * poet.characters(ask))  # two drafts a part
    while not writing.done:
        writing.step()
    assert [p.text for p in writing.poems[0]] == [p.text for p in poet.write_asks([ask])[0]]


def test_write_prefix_gives_the_prefix_and_exactly_length_characters(lyrics_model_dir):
    loaded = store.load(lyrics_model_dir)
    a, b = loaded.vocab.chars[1], "".join(loaded.vocab.chars[2:4])
    result = run_module("write", "--model_dir", lyrics_model_dir, "--prefix", a, b, "--length", "23", "--temperature", "0")
    assert result.returncode == 0, result.stderr
    texts = result.stdout.rstrip("\n").split("\n\n")
    assert [t[: len(p)] for t, p in zip(texts, (a, b))] == [a, b]
    assert [len(t) for t in texts] == [len(a) + 23, len(b) + 23]
    sampled = run_module("write", "--model_dir", lyrics_model_dir, "--prefix", b, "--length", "9", "--top_k", "3",
                         "--num", "2", "--seed", "4", "--format", "jsonl")
    assert sampled.returncode == 0, sampled.stderr
    rows = [json.loads(line) for line in sampled.stdout.splitlines()]
    assert len(rows) == 2 and all(r["text"].startswith(b) and len(r["text"]) == len(b) + 9 for r in rows)
    assert all(len(r["logprobs"]) == 9 and not r["ended"] for r in rows)


def test_write_refuses_poem_options_for_a_lyrics_model(lyrics_model_dir):
    result = run_module("write", "--model_dir", lyrics_model_dir, "--form", "wujue")
    assert result.returncode == 2 and "lyrics model" in result.stderr and "--form" in result.stderr
