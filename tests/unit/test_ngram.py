import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.evaluation.ngram import BOS, EOS, UNK, KneserNey, NgramScore


def total_prob(model, context):
    """Sum of P(w | context) over the known characters, EOS and UNK."""
    return sum(math.exp(model.logprob(context, w)) for w in [*model.vocab, EOS, UNK])


# Corpus for the hand computations: BOS a b EOS and BOS a b b EOS.
HAND = ["ab", "abb"]


def test_order_3_by_hand():
    model = KneserNey(order=3, min_count=1).fit(HAND)
    # Order 3, plain counts: Bab 2, abE 1, abb 1, bbE 1 -> n1 = 3, n2 = 1.
    d3 = 3 / (3 + 2 * 1)
    # Order 2, continuation counts (distinct left neighbours) ab 1, bE 2, bb 1,
    # and the BOS bigram with its plain count, Ba 2 -> n1 = 2, n2 = 2.
    d2 = 2 / (2 + 2 * 2)
    # Order 1, continuation counts a 1 (after BOS), b 2 (after a, b), E 1 -> n1 = 2, n2 = 1.
    d1 = 2 / (2 + 2 * 1)
    uniform = 1 / 4  # a, b, EOS, UNK
    p1 = {w: (max(c - d1, 0) + d1 * 3 * uniform) / 4 for w, c in {"a": 1, "b": 2, EOS: 1, UNK: 0}.items()}
    assert p1 == {"a": 7 / 32, "b": 15 / 32, EOS: 7 / 32, UNK: 3 / 32}

    # P(EOS | a b): context "ab" saw abE 1, abb 1 (total 2, 2 types);
    # back off to context "b", which saw bE 2, bb 1 (total 3, 2 types).
    p2_eos_b = ((2 - d2) + d2 * 2 * p1[EOS]) / 3
    p3 = ((1 - d3) + d3 * 2 * p2_eos_b) / 2
    assert model.logprob("ab", EOS) == pytest.approx(math.log(p3))
    # Mid-poem context longer than order - 1: only the last two count.
    assert model.logprob("bbab", EOS) == pytest.approx(math.log(p3))

    # P(a | BOS): the context is just BOS (order 2), which saw Ba 2 (1 type).
    p_a_bos = ((2 - d2) + d2 * 1 * p1["a"]) / 2
    assert model.logprob(BOS, "a") == pytest.approx(math.log(p_a_bos))
    # Anything before BOS is another poem and is ignored.
    assert model.logprob("bb" + BOS, "a") == pytest.approx(math.log(p_a_bos))
    assert model.logprob((BOS,), "a") == pytest.approx(math.log(p_a_bos))

    # P(a | b a): context "ba" never seen, so order 2 with context "a" (ab 1).
    assert model.logprob("ba", "a") == pytest.approx(math.log(d2 * 1 * p1["a"] / 1))
    # An unknown character is scored as UNK; an unseen context falls to the unigram.
    assert model.logprob("zz", "q") == pytest.approx(math.log(p1[UNK]))


@pytest.mark.parametrize("order", [1, 2, 3, 5])
@pytest.mark.parametrize("context", ["", BOS, BOS + "a", "ab", "bbb", "ba", "zq", BOS + "abba"])
def test_probabilities_sum_to_one(order, context):
    model = KneserNey(order=order, min_count=1).fit(["abcab", "bca", "cab", "a", ""])
    assert total_prob(model, context) == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(
    poems=st.lists(st.text(alphabet="abc", max_size=8), min_size=1, max_size=6),
    context=st.text(alphabet="abcz" + BOS, max_size=5),
    order=st.integers(1, 4),
    min_count=st.integers(1, 2),
)
def test_probabilities_sum_to_one_on_any_corpus(poems, context, order, min_count):
    model = KneserNey(order=order, min_count=min_count).fit(poems)
    assert total_prob(model, context) == pytest.approx(1.0)


def test_order_1_is_a_smoothed_unigram():
    model = KneserNey(order=1, min_count=1).fit(["aab", "a"])
    # Plain counts a 3, b 1, EOS 2 -> n1 = 1, n2 = 1, D = 1/3; total 6, 3 types.
    d = 1 / 3
    uniform = 1 / 4
    expected = {w: (max(c - d, 0) + d * 3 * uniform) / 6 for w, c in {"a": 3, "b": 1, EOS: 2, UNK: 0}.items()}
    for context in ["", BOS, "ab", BOS + "a"]:
        for w, p in expected.items():
            assert model.logprob(context, w) == pytest.approx(math.log(p))


def test_perplexity_is_exp_of_mean_nll():
    model = KneserNey(order=3, min_count=1).fit(["abcab", "bca", "cab"])
    held = ["abc", "cb", "bax"]
    nll, tokens = 0.0, 0
    for poem in held:
        sequence = [BOS, *poem, EOS]
        for i in range(1, len(sequence)):
            nll -= model.logprob(sequence[:i], sequence[i])
            tokens += 1
    score = model.score(held)
    assert score.tokens == tokens == 3 + 2 + 3 + 3
    assert score.total_nll == pytest.approx(nll)
    assert score.perplexity == pytest.approx(math.exp(nll / tokens))
    assert NgramScore(total_nll=6.0, tokens=3, unknown=0).perplexity == pytest.approx(math.exp(2.0))


def test_unknown_characters_are_counted_and_scored_as_unk():
    # min_count=2: c (seen once) becomes UNK in training, like Vocab.build.
    model = KneserNey(order=2, min_count=2).fit(["abc", "ab", "ba"])
    assert model.vocab == {"a", "b"}
    score = model.score(["acd", "ab"])
    assert (score.tokens, score.unknown) == (4 + 3, 2)
    assert model.logprob("a", "c") == model.logprob("a", "d") == model.logprob("a", UNK)
    # UNK followed "b" in training but never "a".
    assert model.logprob("b", UNK) > model.logprob("a", UNK)


def test_fitting_again_starts_afresh():
    model = KneserNey(order=2, min_count=1).fit(["xyz"]).fit(HAND)
    assert model.vocab == {"a", "b"}
    assert model.logprob(BOS + "a", "b") == KneserNey(order=2, min_count=1).fit(HAND).logprob(BOS + "a", "b")


def test_explicit_vocabulary():
    model = KneserNey(order=2, vocab="abx").fit(["abc", "ab"])
    assert model.vocab == {"a", "b", "x"}
    assert model.score(["xc"]).unknown == 1
    assert total_prob(model, "a") == pytest.approx(1.0)


def test_bad_input():
    with pytest.raises(PoetryError):
        KneserNey(order=0)
    with pytest.raises(PoetryError):
        KneserNey(order=2).fit(["a" + EOS + "b"])
    model = KneserNey(order=2, min_count=1).fit(["ab"])
    with pytest.raises(PoetryError):
        model.logprob("a", BOS)


def markov_corpus(count, seed):
    """Poems from a sparse second-order chain: structure an n-gram model can find."""
    rng = random.Random(seed)
    alphabet = "abcdefghij"
    table_rng = random.Random(1234)
    table = {(x, y): table_rng.sample(alphabet, 2) for x in alphabet for y in alphabet}
    poems = []
    for _ in range(count):
        text, length = rng.sample(alphabet, 2), rng.randint(6, 14)
        while len(text) < length:
            text.append(rng.choice(table[text[-2], text[-1]]))
        poems.append("".join(text))
    return poems


def test_more_data_and_higher_order_lower_held_out_perplexity():
    held = markov_corpus(200, seed=1)
    small, large = markov_corpus(50, seed=2), markov_corpus(2000, seed=3)
    perplexity = {
        (size, order): KneserNey(order=order, min_count=1).fit(corpus).score(held).perplexity
        for size, corpus in (("small", small), ("large", large))
        for order in (1, 2, 3)
    }
    for order in (1, 2, 3):
        assert perplexity["large", order] < perplexity["small", order]
    assert perplexity["large", 3] < perplexity["large", 2] < perplexity["large", 1]
