import numpy as np
import pytest
import tensorflow as tf

from poetry_rnn.corpus import split
from poetry_rnn.corpus import reading
from poetry_rnn.training import dataset
from poetry_rnn.model import vocab as vocab_lib
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model.network import ModelConfig, PoetryModel
from poetry_rnn.model.vocab import Vocab
from conftest import synthetic_poems


def encoded(count=300, seed=0):
    poems = [reading.CorpusPoem(t, c) for t, c in synthetic_poems(count, seed)]
    vocab = Vocab.build((p.content for p in poems), min_count=1)
    return poems, vocab, dataset.encode_poems(poems, vocab)


def test_batches_shift_targets_and_cover_every_poem_once():
    _, _, seqs = encoded()
    batches = dataset.poem_dataset(seqs, 16, shuffle_seed=1)
    seen, count = [], 0
    for inputs, targets, lengths in batches.dataset:
        count += 1
        inputs, targets, lengths = inputs.numpy(), targets.numpy(), lengths.numpy()
        for row_in, row_out, n in zip(inputs, targets, lengths):
            assert row_in[0] == vocab_lib.BOS and row_out[n - 1] == vocab_lib.EOS
            np.testing.assert_array_equal(row_in[1:n], row_out[: n - 1])
            assert np.all(row_out[n:] == vocab_lib.PAD)
            seen.append(tuple(row_in[:n]) + (row_out[n - 1],))
    assert count == batches.batches_per_epoch
    assert sorted(seen) == sorted(tuple(s) for s in seqs)


def test_bucketing_keeps_padding_small():
    _, _, seqs = encoded(1000)
    real = total = 0
    for _, targets, lengths in dataset.poem_dataset(seqs, 32, shuffle_seed=0).dataset:
        real += int(lengths.numpy().sum())
        total += targets.shape[0] * targets.shape[1]
    assert 1 - real / total < 0.05


def test_epoch_order_is_fixed_by_seed_and_skip_resumes_it():
    _, _, seqs = encoded()
    first = [b[0].numpy() for b in dataset.poem_dataset(seqs, 16, shuffle_seed=7).dataset]
    again = [b[0].numpy() for b in dataset.poem_dataset(seqs, 16, shuffle_seed=7, skip_batches=3).dataset]
    other = [b[0].numpy() for b in dataset.poem_dataset(seqs, 16, shuffle_seed=8).dataset]
    assert len(again) == len(first) - 3 and all(np.array_equal(a, b) for a, b in zip(first[3:], again))
    assert not all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(first, other))


def test_valid_split_is_deterministic_and_disjoint():
    poems, _, _ = encoded(2000)
    train, valid = split.split_train_valid(poems, 0.05)
    assert set(p.content for p in valid) == set(p.content for p in split.split_train_valid(poems[::-1], 0.05)[1])
    assert not set(p.content for p in train) & set(p.content for p in valid)
    assert 0.02 < len(valid) / len(poems) < 0.09


def test_held_out_poems_split_in_two_by_a_second_hash():
    poems, _, _ = encoded(4000)
    _, held_out = split.split_train_valid(poems, 0.2)
    valid, test = split.split_held_out(held_out)
    assert sorted(p.content for p in valid + test) == sorted(p.content for p in held_out)
    assert not {p.content for p in valid} & {p.content for p in test}
    assert 0.4 < len(test) / len(held_out) < 0.6
    # A second hash, not the first one's low bits: the first hash's order does not decide the halves.
    first = sorted(held_out, key=split.content_hash)
    assert 0.3 < sum(p in test for p in first[: len(first) // 2]) / (len(first) // 2) < 0.7
    assert split.split_held_out(held_out[::-1])[1] == test[::-1]


def test_keyword_prompts_are_the_poems_own_characters_drawn_anew():
    poems, vocab, _ = encoded(400)
    vocab = Vocab.build([p.content + p.title for p in poems], min_count=1)
    rng = np.random.default_rng(0)
    drawn = [dataset.draw_prompt(p, rng) for p in poems]
    counts = [len(k) for _, k in drawn]
    assert set(counts) == {0, 1, 2, 3} and 0.15 < counts.count(0) / len(counts) < 0.35
    assert 0.4 < sum(bool(t) for t, _ in drawn) / len(drawn) < 0.6
    for poem, (title, keywords) in zip(poems, drawn):
        assert title in ("", poem.title) and len(set(keywords)) == len(keywords)
        assert set(keywords) <= set(poem.content) and not set(keywords) & set("，。")
    again = dataset.encode_poems(poems, vocab, "keywords", np.random.default_rng(0))
    other = dataset.encode_poems(poems, vocab, "keywords", np.random.default_rng(1))
    first = dataset.encode_poems(poems, vocab, "keywords", np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))  # an epoch's prompts are fixed by its seed
    assert not all(len(a) == len(b) and np.array_equal(a, b) for a, b in zip(first, other))
    sep = vocab_lib.SEP
    title, keywords = drawn[0]
    expected = [vocab_lib.BOS, *vocab.encode(title), sep, *vocab.encode(keywords), sep, *vocab.encode(poems[0].content),
                vocab_lib.EOS]
    assert dataset.encode_poems(poems[:1], vocab, "keywords", np.random.default_rng(0))[0].tolist() == expected
    # Without an epoch's rng (evaluation): no prompt, read as an unconditioned model reads a poem.
    bare = dataset.encode_poems(poems[:1], vocab, "keywords")[0].tolist()
    assert bare == dataset.encode_poems(poems[:1], vocab)[0].tolist()
    assert bare == [vocab_lib.BOS, *vocab.encode(poems[0].content), vocab_lib.EOS]
    # A prompt-bag model reads the poem as an unconditioned model does; the prompt follows its EOS.
    bagged = dataset.encode_poems(poems[:1], vocab, "keywords", np.random.default_rng(0), prompt_bag=True)[0].tolist()
    assert bagged == bare + ([*vocab.encode(title + keywords), vocab_lib.EOS] if title + keywords else [])


def test_prompt_positions_cover_a_prefix_up_to_the_last_separator_and_a_bag_after_the_first_end():
    sep, pad, eos = vocab_lib.SEP, vocab_lib.PAD, vocab_lib.EOS
    targets = tf.constant([[7, sep, 8, sep, 9, 9, eos, pad], [sep, sep, 9, eos, pad, pad, pad, pad],
                           [9, 9, 9, eos, pad, pad, pad, pad], [9, 9, eos, 7, 8, eos, pad, pad]])
    np.testing.assert_array_equal(dataset.prompt_positions(targets).numpy(),
                                  [[1, 1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0],
                                   [0, 0, 0, 1, 1, 1, 0, 0]])


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("features", ["embedding", "onehot", "tied", "adaptive"])
def test_one_step_decoding_matches_full_sequence(cell, features):
    tied = features == "tied"  # weight tying: the output layer reads the embedding matrix
    model = PoetryModel(ModelConfig(vocab_size=30, cell=cell, input="onehot" if features == "onehot" else "embedding",
                                    units=12, embed_dim=6, layers=2, tie_embeddings=tied,
                                    adaptive_softmax="10" if features == "adaptive" else ""))
    ids = tf.random.uniform((3, 6), 0, 30, tf.int32)
    logits, final = model(ids)
    states, stepped = model.initial_states(3), []
    for t in range(6):
        step_logits, states = model.step(ids[:, t], states)
        stepped.append(step_logits)
    np.testing.assert_allclose(tf.stack(stepped, 1).numpy(), logits.numpy(), atol=1e-5)
    for a, b in zip(tf.nest.flatten(states), tf.nest.flatten(final)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_prompt_bag_reaches_every_step_the_same_way_in_training_and_decoding(cell):
    model = PoetryModel(ModelConfig(vocab_size=30, cell=cell, units=12, embed_dim=6, layers=2, condition="keywords",
                                    prompt_bag=True))
    for variable in model.weights:
        if "bag_" in variable.path:  # trained away from their zero start
            variable.assign(tf.random.normal(variable.shape))
    # BOS, content 20 21 22, EOS, then the bag: title 10 11 and keyword 12, and a second EOS.
    prompted = tf.constant([[2, 20, 21, 22, 3, 10, 11, 12, 3]])
    logits, _ = model(prompted[:, :-1])
    context = model.prompt_context(tf.constant([[10, 11, 12, 0]]))
    states, stepped = model.initial_states(1), []
    for t in range(5):  # BOS and the content: what a decoder given the prompt up front steps through
        step_logits, states = model.step(prompted[:, t], states, context)
        stepped.append(step_logits)
    np.testing.assert_allclose(tf.stack(stepped, 1).numpy(), logits.numpy()[:, :5], atol=1e-5)
    # No prompt, no shift: the bag of nothing is zero, whatever its weights.
    unprompted = tf.constant([[2, 20, 21, 22, 3]])
    plain = PoetryModel(ModelConfig(vocab_size=30, cell=cell, units=12, embed_dim=6, layers=2, condition="keywords"))
    for variable, value in zip(plain.weights, [v for v in model.weights if "bag_" not in v.path], strict=True):
        variable.assign(value)
    np.testing.assert_allclose(model(unprompted)[0].numpy(), plain(unprompted)[0].numpy(), atol=1e-6)
    with pytest.raises(PoetryError, match="--prompt_bag needs --condition title or keywords"):
        ModelConfig(vocab_size=30, prompt_bag=True)


def test_config_rejects_unknown_cells_and_fields():
    with pytest.raises(PoetryError, match="--cell must be one of rnn, lstm, gru, got .transformer."):
        ModelConfig(vocab_size=10, cell="transformer")
    with pytest.raises(PoetryError, match="unknown model fields heads"):
        ModelConfig.from_dict({"vocab_size": 10, "heads": 4})
