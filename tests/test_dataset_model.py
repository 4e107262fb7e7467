import numpy as np
import pytest
import tensorflow as tf

from poetry_rnn import corpus, dataset, vocab as vocab_lib
from poetry_rnn.errors import PoetryError
from poetry_rnn.model import ModelConfig, PoetryModel
from poetry_rnn.vocab import Vocab
from conftest import synthetic_poems


def encoded(count=300, seed=0):
    poems = [corpus.Poem(t, c) for t, c in synthetic_poems(count, seed)]
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
    train, valid = dataset.split_train_valid(poems, 0.05)
    assert set(p.content for p in valid) == set(p.content for p in dataset.split_train_valid(poems[::-1], 0.05)[1])
    assert not set(p.content for p in train) & set(p.content for p in valid)
    assert 0.02 < len(valid) / len(poems) < 0.09


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("features", ["embedding", "onehot"])
def test_one_step_decoding_matches_full_sequence(cell, features):
    model = PoetryModel(ModelConfig(vocab_size=30, cell=cell, input=features, units=12, embed_dim=6, layers=2))
    ids = tf.random.uniform((3, 6), 0, 30, tf.int32)
    logits, final = model(ids)
    states, stepped = model.initial_states(3), []
    for t in range(6):
        step_logits, states = model.step(ids[:, t], states)
        stepped.append(step_logits)
    np.testing.assert_allclose(tf.stack(stepped, 1).numpy(), logits.numpy(), atol=1e-5)
    for a, b in zip(tf.nest.flatten(states), tf.nest.flatten(final)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_config_rejects_unknown_cells_and_fields():
    with pytest.raises(PoetryError, match="--cell must be one of rnn, lstm, gru, got .transformer."):
        ModelConfig(vocab_size=10, cell="transformer")
    with pytest.raises(PoetryError, match="unknown model fields heads"):
        ModelConfig.from_dict({"vocab_size": 10, "heads": 4})
