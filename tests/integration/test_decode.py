import collections
import dataclasses

import numpy as np
import tensorflow as tf
import pytest

from poetry_rnn.generation import constraints, drafts, noise, processors, ranking, sampler
from poetry_rnn.model import store, vocab as vocab_lib
from poetry_rnn.verse import poem_request
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model.network import ModelConfig, PoetryModel
from poetry_rnn.model.vocab import Vocab
from poetry_rnn.options import SamplingOptions
from poetry_rnn.verse import forms, prosody
from conftest import CHARS

NEG_INF = processors.NEG_INF
SPECIAL = {vocab_lib.PAD, vocab_lib.UNK, vocab_lib.BOS, vocab_lib.SEP}


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return store.load(tiny_model_dir)


def generate(loaded, requests, sampling, placement=None, ranking=None):
    return drafts.generate(sampler.Decoder(loaded.model), loaded.vocab, requests, sampling, placement, ranking)


def test_free_poems_stop_at_eos_and_never_emit_special_tokens(loaded):
    requests = [poem_request.PoemRequest(begin=c, max_len=60) for c in "春花秋月"] * 8
    plan = constraints.plan(requests, loaded.vocab)
    decoded = sampler.Decoder(loaded.model).decode(plan, temperature=1.5, keys=np.arange(32))
    for b in range(len(requests)):
        tokens = decoded.tokens[b][: decoded.length(b)]
        assert not SPECIAL & set(tokens.tolist())
        assert vocab_lib.EOS not in tokens[:-1].tolist()
        assert decoded.ended[b] == (tokens[-1] == vocab_lib.EOS)
        assert loaded.vocab.decode(tokens).startswith(requests[b].begin)
    assert decoded.ended.mean() > 0.9  # the tiny model has learned to end poems


def test_same_seed_same_poems_other_seed_other_poems(loaded):
    requests = [poem_request.PoemRequest(begin="春")] * 6
    poems = lambda seed: [p.content for p in generate(loaded, requests, SamplingOptions.plain(seed=seed))]  # noqa: E731
    assert poems(1) == poems(1)
    assert poems(1) != poems(2)


def test_greedy_is_top_k_1_and_deterministic(loaded):
    requests = [poem_request.PoemRequest(begin=c) for c in "春秋"]
    greedy = generate(loaded, requests, SamplingOptions.plain(temperature=0.0, seed=1))
    top1 = generate(loaded, requests, SamplingOptions.plain(temperature=1.0, top_k=1, seed=2))
    assert [p.content for p in greedy] == [p.content for p in top1]


def test_top_k_only_samples_among_the_k_most_likely():
    vocab = Vocab.build([CHARS], min_count=1)
    model = PoetryModel(ModelConfig(vocab_size=len(vocab), units=8, embed_dim=4, layers=1))
    plan = constraints.plan([poem_request.PoemRequest(max_len=1)] * 200, vocab)
    decoded = sampler.Decoder(model).decode(plan, temperature=5.0, top_k=3, keys=np.arange(200))
    logits, _ = model.step(np.full([1], vocab_lib.BOS, np.int32), model.initial_states(1))
    allowed = plan.mask_table[plan.step_masks[0, 0]]
    ranked = [i for i in np.argsort(-logits.numpy()[0]) if allowed[i]][:3]
    assert set(decoded.tokens[:, 0].tolist()) <= set(ranked)
    assert len(set(decoded.tokens[:, 0].tolist())) == 3


def test_top_p_keeps_the_nucleus():
    logits = tf.math.log(tf.constant([[0.5, 0.3, 0.15, 0.05]]))

    def kept(top_p):
        return processors.TopP(top_p=tf.constant([top_p], tf.float32)).apply(logits, (), None).numpy()

    assert np.isfinite(kept(0.7)[0, :2]).all() and np.isinf(kept(0.7)[0, 2:]).all()
    assert np.isfinite(kept(1.0)).all()


def test_sampling_settings_are_per_row():
    # Coalesced requests keep their own settings: row 0 top-1, row 1 top-2 of the same logits.
    logits = tf.math.log(tf.constant([[0.5, 0.3, 0.15, 0.05]] * 2))
    kept = processors.TopK(top_k=tf.constant([1, 2])).apply(logits, (), None).numpy()
    assert np.isfinite(kept[0]).tolist() == [True, False, False, False]
    assert np.isfinite(kept[1]).tolist() == [True, True, False, False]


def test_a_poem_is_the_same_alone_or_in_a_batch(loaded):
    # Its random numbers are keyed by (seed, index, copy), not by its place in the batch.
    request = poem_request.PoemRequest(begin="春", max_len=40)
    alone = generate(loaded, [request], SamplingOptions.plain(seed=9), drafts.Placement.of(1, indices=[3]))[0]
    others = [poem_request.PoemRequest(begin="月", max_len=20)] * 5
    sampling = [SamplingOptions.plain(seed=1, temperature=0.5)] * 5 + [SamplingOptions.plain(seed=9)]
    batched = generate(loaded, others + [request], sampling, drafts.Placement.of(6, indices=[0, 1, 2, 3, 4, 3]))[-1]
    assert alone.content == batched.content
    assert alone.logprobs == pytest.approx(batched.logprobs, abs=1e-5)


def test_best_of_keeps_the_most_likely_candidate(loaded):
    request = poem_request.PoemRequest(begin="春", max_len=40)
    best = generate(loaded, [request], SamplingOptions.plain(seed=5, best_of=8))[0]
    # The eight drafts, decoded directly with the keys generate gives them.
    plan = constraints.plan([request] * 8, loaded.vocab)
    decoded = sampler.Decoder(loaded.model).decode(plan, keys=[noise.row_key(5, 0, j) for j in range(8)])
    means = [decoded.logprobs[b, : decoded.length(b)].mean() for b in range(8)]
    assert best.mean_logprob == pytest.approx(max(means), abs=1e-5)
    assert len({round(m, 4) for m in means}) > 1  # the drafts differ


def drafts_of(loaded, request, seed, index=0, copies=8):
    """The drafts generate makes for request ``index`` with best_of=copies."""
    plan = constraints.plan([request] * copies, loaded.vocab)
    decoded = sampler.Decoder(loaded.model).decode(plan, keys=[noise.row_key(seed, index, j) for j in range(copies)])
    return [drafts.Draft(request, "", loaded.vocab.decode(decoded.tokens[b]),
                        decoded.logprobs[b, : decoded.length(b)].tolist(), True) for b in range(copies)]


def test_ranking_weighs_a_second_opinion_and_a_rhyme_bonus(loaded):
    from poetry_rnn.verse import prosody
    from poetry_rnn.evaluation import ngram
    from conftest import synthetic_poems

    request = poem_request.PoemRequest(begin="春", max_len=40)
    drafts = drafts_of(loaded, request, seed=5)
    lm = ngram.KneserNey(order=3, vocab=loaded.vocab.chars).fit(c for _, c in synthetic_poems(200, seed=1))
    heavy = ranking.Ranking(lm, ngram_weight=100.0)
    best = generate(loaded, [request], SamplingOptions.plain(seed=5, best_of=8), ranking=heavy)[0]
    assert best.content == max(drafts, key=lambda p: lm.mean_logprob(p.content)).content
    assert heavy.score(best) == pytest.approx(best.mean_logprob + 100.0 * lm.mean_logprob(best.content))
    rhymes = lambda p: prosody.rhyme_ok(forms.split_lines(p.content))  # noqa: E731
    bonus = ranking.Ranking(rhyme_bonus=1000.0)
    best = generate(loaded, [request], SamplingOptions.plain(seed=5, best_of=8), ranking=bonus)[0]
    assert best.content == max(drafts, key=lambda p: (rhymes(p), p.mean_logprob)).content


def test_novelty_ranking_avoids_the_bigrams_already_chosen(loaded):
    request = poem_request.PoemRequest(form="wujue")
    novelty = ranking.Ranking(novelty_weight=1000.0)
    first, second = generate(loaded, [request] * 2, SamplingOptions.plain(seed=6, best_of=8), ranking=novelty)
    assert first.content == max(drafts_of(loaded, request, 6, 0), key=lambda p: p.mean_logprob).content
    seen = set(forms.bigrams(first.content))
    overlap = lambda p: sum(b in seen for b in forms.bigrams(p.content)) / len(forms.bigrams(p.content))  # noqa: E731
    options = drafts_of(loaded, request, 6, 1)
    assert second.content == max(options, key=lambda p: (-overlap(p), p.mean_logprob)).content
    assert len({overlap(p) for p in options}) > 1  # the drafts differ in what they share


def test_a_draft_that_copies_a_training_poem_loses_to_any_that_does_not_unless_copies_are_allowed(loaded):
    from poetry_rnn.model import training_poems

    request = poem_request.PoemRequest(begin="春", max_len=40)
    decoder = sampler.Decoder(loaded.model)
    sampling = SamplingOptions.plain(seed=5, best_of=8, allow_copies=False)  # plain: every pull off, this one too
    options, _ = drafts.draft_poems(decoder, loaded.vocab, [request], sampling)
    options.sort(key=lambda p: p.mean_logprob, reverse=True)
    assert len({p.content for p in options}) == 8
    known = training_poems.TrainingPoems.of([options[0].content, "春风"])
    best = drafts.generate(decoder, loaded.vocab, [request], sampling, known=known)[0]
    assert best.content == options[1].content and not best.copied
    allowed = dataclasses.replace(sampling, allow_copies=True)
    best = drafts.generate(decoder, loaded.vocab, [request], allowed, known=known)[0]
    assert best.content == options[0].content and best.copied
    # every draft a copy: one is still written (the likeliest)
    known = training_poems.TrainingPoems.of(p.content for p in options)
    assert drafts.generate(decoder, loaded.vocab, [request], sampling, known=known)[0].content == options[0].content


def own_logprobs(loaded, tokens):
    """log p of each of ``tokens`` (B, T) under the model, read teacher-forced from BOS."""
    import tensorflow as tf

    ids = np.concatenate([np.full((len(tokens), 1), vocab_lib.BOS), tokens], axis=1).astype(np.int32)
    own = tf.nn.log_softmax(tf.cast(loaded.model(ids[:, :-1])[0], tf.float32)).numpy()
    return np.take_along_axis(own, ids[:, 1:, None], 2)[..., 0]


def test_begin_character_outside_the_vocabulary_is_an_error(loaded):
    with pytest.raises(PoetryError, match="龘"):
        constraints.plan([poem_request.PoemRequest(begin="龘")], loaded.vocab)


def test_the_line_end_pull_acts_where_the_first_line_ends_and_leaves_the_logprobs_alone(loaded):
    import dataclasses

    requests = [poem_request.PoemRequest(form="wujue")] * 8
    plan = constraints.plan(requests, loaded.vocab)
    favourite = loaded.vocab.id("声")
    plan = dataclasses.replace(plan, end_lift=np.eye(len(loaded.vocab), dtype=np.float32)[favourite])
    decoder, keys = sampler.Decoder(loaded.model), np.arange(8)
    plain = decoder.decode(plan, keys=keys)
    pulled = decoder.decode(plan, keys=keys, line_end_bonus=100.0)
    assert (pulled.tokens[:, 4] == favourite).all() and (plain.tokens[:, 4] != favourite).any()
    assert (pulled.tokens[:, :4] == plain.tokens[:, :4]).all()  # nothing changes before the line end
    np.testing.assert_allclose(pulled.logprobs[:, :4], plain.logprobs[:, :4], rtol=1e-5)
    # The log-probabilities recorded are the model's own, not the pulled ones.
    np.testing.assert_allclose(pulled.logprobs[:, :6], own_logprobs(loaded, pulled.tokens[:, :6]), atol=1e-4)
    off = decoder.decode(plan, keys=keys, line_end_bonus=0.0)
    assert (off.tokens == plain.tokens).all()


def test_rounds_double_so_each_poem_sees_at_least_half_of_those_before_it_or_of_the_window():
    assert [ranking.round_start(i) for i in range(10)] == [0, 1, 2, 2, 4, 4, 4, 4, 8, 8]
    assert ranking.round_start(ranking.ROUND_MAX * 3 + 5) == ranking.ROUND_MAX * 3
    for i in range(1, 5000):
        seen = min(ranking.round_start(i), ranking.REUSE_WINDOW)
        assert seen * 2 > min(i, ranking.REUSE_WINDOW + ranking.ROUND_MAX) - 1
        assert i - ranking.round_start(i) < ranking.ROUND_MAX


def test_the_reuse_table_lists_what_followed_each_character_per_set(loaded):
    vocab = loaded.vocab
    table = processors.ReuseTable.build(vocab, [{"春花", "春月", "花落"}, set(), {"春风"}])
    following = lambda g, c: sorted(vocab.decode([t for t in table.successors[table.index[g, vocab.id(c)]]  # noqa: E731
                                                  if t < len(vocab)]))
    assert following(0, "春") == ["月", "花"] and following(0, "花") == ["落"] and following(0, "月") == []
    assert following(1, "春") == [] and following(2, "春") == ["风"]
    assert table.index.shape == (3, len(vocab)) and (table.successors[0] == len(vocab)).all()  # row 0: nothing


def test_the_reuse_penalty_keeps_each_round_off_the_pairs_of_the_rounds_before(loaded):
    requests = [poem_request.PoemRequest(form="wujue")] * 8
    sampling = lambda penalty: SamplingOptions.plain(temperature=0.5, seed=3, best_of=2, reuse_penalty=penalty)  # noqa: E731
    write = lambda penalty: generate(loaded, requests, sampling(penalty))  # noqa: E731
    pairs = lambda poem: set(forms.bigrams(poem.content))  # noqa: E731
    earlier = lambda sets, i: set().union(*sets[: ranking.round_start(i)])  # noqa: E731
    free = [pairs(p) for p in write(0.0)]
    assert any(free[i] & earlier(free, i) for i in range(8))  # unpenalised, the model repeats itself
    kept = [pairs(p) for p in write(100.0)]
    assert not any(kept[i] & earlier(kept, i) for i in range(8))
    assert kept[0] == free[0]  # the first round has nothing to avoid
    # The same poems however the ask is cut into calls.
    memory = ranking.AskMemory()
    cut = [p for part in ([0, 1, 2], [3, 4, 5, 6, 7]) for p in generate(
        loaded, [requests[i] for i in part], sampling(100.0), drafts.Placement.of(len(part), part, memory=memory))]
    assert [pairs(p) for p in cut] == kept
    assert memory.bigrams(0, before=4) == set().union(*kept[:4])
    assert memory.bigrams(0, before=4, window=2) == kept[2] | kept[3]


def test_the_reuse_penalty_leaves_the_logprobs_alone_and_is_off_at_zero(loaded):
    requests = [poem_request.PoemRequest(form="wujue")] * 8
    plan = constraints.plan(requests, loaded.vocab)
    decoder, keys = sampler.Decoder(loaded.model), np.arange(8)
    plain = decoder.decode(plan, keys=keys)
    table = processors.ReuseTable.build(loaded.vocab, [set(forms.bigrams(loaded.vocab.decode(plain.tokens[0])))])
    reuse = (table, np.zeros(8, np.int32))
    penalised = decoder.decode(plan, keys=keys, reuse=reuse, reuse_penalty=100.0)
    assert (penalised.tokens != plain.tokens).any()
    np.testing.assert_allclose(penalised.logprobs, own_logprobs(loaded, penalised.tokens), atol=1e-4)
    off = decoder.decode(plan, keys=keys, reuse=reuse, reuse_penalty=0.0)
    assert (off.tokens == plain.tokens).all()


def most_uses(vocab, tokens):
    """The most uses of one Han character in a poem's tokens."""
    return max(collections.Counter(c for c in vocab.decode(tokens) if prosody.is_han(c)).values())


def test_the_repeat_penalty_keeps_free_poems_off_a_third_use_but_not_lyrics_streams(loaded):
    requests = [poem_request.PoemRequest(begin="春", max_len=80)] * 8
    stream = [poem_request.PoemRequest(begin="春", max_len=80, stop_at_eos=False)] * 8
    decoder, keys = sampler.Decoder(loaded.model), np.arange(8)
    settings = dict(keys=keys, temperature=0.7)
    plan = constraints.plan(requests + stream, loaded.vocab)
    assert plan.free_poem.tolist() == [True] * 8 + [False] * 8 and plan.stream.tolist() == [False] * 8 + [True] * 8
    assert processors.Doubling.from_plan(plan, {"double_penalty": 2.0})["penalty"].tolist() == [2.0] * 8 + [0.0] * 8
    plain = decoder.decode(plan, keys=np.arange(16), temperature=0.7)
    uses = [most_uses(loaded.vocab, plain.tokens[b][: plain.length(b)]) for b in range(16)]
    assert max(uses[:8]) > poem_request.MAX_USES and max(uses[8:]) > poem_request.MAX_USES  # the tiny model repeats
    penalised = decoder.decode(plan, keys=np.arange(16), temperature=0.7, repeat_penalty=100.0)
    for b in range(8):
        tokens = penalised.tokens[b : b + 1, : penalised.length(b)]
        assert most_uses(loaded.vocab, tokens[0]) <= poem_request.MAX_USES
        np.testing.assert_allclose(penalised.logprobs[b, : tokens.shape[1]], own_logprobs(loaded, tokens)[0],
                                   atol=1e-4)  # the model's own log-probabilities
    assert (penalised.tokens[8:] == plain.tokens[8:]).all()  # a stream's chorus may come back
    off = decoder.decode(constraints.plan(requests, loaded.vocab), repeat_penalty=0.0, **settings)
    assert (off.tokens == plain.tokens[:8, : off.tokens.shape[1]]).all()


def test_the_couplet_repeat_penalty_keeps_a_couplet_from_saying_a_character_twice_but_not_a_stream(loaded):
    requests = [poem_request.PoemRequest(begin="春", max_len=60)] * 12
    stream = [poem_request.PoemRequest(begin="春", max_len=60, stop_at_eos=False)] * 4
    plan = constraints.plan(requests + stream, loaded.vocab)
    assert set(loaded.vocab.decode(np.flatnonzero(plan.couplet_end))) == set("。？！") & set(loaded.vocab.tokens)
    decoder, keys = sampler.Decoder(loaded.model), np.arange(16)
    plain = decoder.decode(plan, keys=keys, temperature=0.8)
    text = lambda decoded, b: loaded.vocab.decode(decoded.tokens[b][: decoded.length(b)])  # noqa: E731
    assert any(any(forms.couplet_repeats(text(plain, b))) for b in range(12))  # the tiny model repeats itself
    penalised = decoder.decode(plan, keys=keys, temperature=0.8, couplet_repeat_penalty=100.0)
    for b in range(12):
        assert not any(forms.couplet_repeats(text(penalised, b))), text(penalised, b)
        tokens = penalised.tokens[b : b + 1, : penalised.length(b)]
        np.testing.assert_allclose(penalised.logprobs[b, : tokens.shape[1]], own_logprobs(loaded, tokens)[0],
                                   atol=1e-4)  # the model's own log-probabilities
    assert (penalised.tokens[12:] == plain.tokens[12:, : penalised.tokens.shape[1]]).all()  # a stream is left alone
    off = decoder.decode(plan, keys=keys, temperature=0.8, couplet_repeat_penalty=0.0)
    assert (off.tokens == plain.tokens).all()


def test_the_line_end_repeat_penalty_keeps_lines_off_an_earlier_line_s_end_but_not_a_stream_s(loaded):
    free = [poem_request.PoemRequest(begin=c, max_len=60, couplets=4, line_chars=5) for c in "春花秋月" * 2]
    regular = [poem_request.PoemRequest(form="wulv", begin=c) for c in "春花秋月"]
    stream = [poem_request.PoemRequest(begin="春", max_len=60, stop_at_eos=False)] * 4
    plan = constraints.plan(free + regular + stream, loaded.vocab)
    decoder, keys, shaped = sampler.Decoder(loaded.model), np.arange(16), len(free) + len(regular)
    text = lambda decoded, b: loaded.vocab.decode(decoded.tokens[b][: decoded.length(b)])  # noqa: E731
    plain = decoder.decode(plan, keys=keys, temperature=1.0)
    assert sum(forms.line_end_repeats(text(plain, b)) for b in range(shaped)) >= 3  # the tiny model repeats them
    penalised = decoder.decode(plan, keys=keys, temperature=1.0, line_end_repeat_penalty=100.0)
    for b in range(shaped):
        assert not forms.line_end_repeats(text(penalised, b)), text(penalised, b)
        tokens = penalised.tokens[b : b + 1, : penalised.length(b)]
        np.testing.assert_allclose(penalised.logprobs[b, : tokens.shape[1]], own_logprobs(loaded, tokens)[0],
                                   atol=1e-4)  # the model's own log-probabilities
    assert (penalised.tokens[shaped:] == plain.tokens[shaped:, : penalised.tokens.shape[1]]).all()  # a stream's
    off = decoder.decode(plan, keys=keys, temperature=1.0, line_end_repeat_penalty=0.0)
    assert (off.tokens == plain.tokens).all()


def test_free_poems_sample_at_free_heat_times_the_temperature_and_shaped_poems_and_streams_at_it(loaded):
    free, stream = (poem_request.PoemRequest(begin="春", max_len=40, stop_at_eos=s) for s in (True, False))
    plan = constraints.plan([free, poem_request.PoemRequest(form="wujue"), stream], loaded.vocab)
    temperature = processors.Temperature.from_plan(plan, {"temperature": 0.8, "free_heat": 1.125})["temperature"]
    np.testing.assert_allclose(temperature, [0.9, 0.8, 0.8])
    np.testing.assert_allclose(processors.Temperature.from_plan(plan, {"temperature": 0.8})["temperature"], 0.8)
    assert processors.GumbelNoise.from_plan(plan, {"temperature": 0.0, "free_heat": 1.125})["greedy"].all()
    free_plan, decoder, keys = constraints.plan([free] * 8, loaded.vocab), sampler.Decoder(loaded.model), np.arange(8)
    heated = decoder.decode(free_plan, keys=keys, temperature=0.8, free_heat=1.5)
    assert (heated.tokens == decoder.decode(free_plan, keys=keys, temperature=1.2).tokens).all()
    assert (heated.tokens != decoder.decode(free_plan, keys=keys, temperature=0.8).tokens).any()


def test_the_natural_end_gives_the_end_the_models_own_probability_after_the_sampling_processors():
    size, end = 6, vocab_lib.EOS
    probabilities = np.full(size, 0.1, np.float32)
    probabilities[end], probabilities[4] = 0.3, 0.3  # the model ends here 3 times in 10
    own = np.log(np.tile(probabilities, (4, 1)))
    sharpened = own / 0.5  # temperature 0.5: the end would be drawn more often than 0.3
    sharpened[:, 0] = processors.NEG_INF  # and top-p has cut a character
    sharpened[3] = processors.NEG_INF
    sharpened[3, end] = 0.0  # nothing but the end is left
    end_allowed = np.array([[True], [True], [False], [True]])
    natural = processors.NaturalEnd(end_allowed=tf.constant(end_allowed), natural=tf.constant([True, False, True, True]),
                                    free=tf.constant([False] * 4), closes=tf.constant([False] * size))
    step = processors.Step(tf.constant(0), tf.constant([1] * 4), None, None, model_logits=tf.constant(own))
    scores = natural.apply(tf.constant(sharpened), (), step).numpy()
    np.testing.assert_allclose(tf.nn.softmax(scores[0]).numpy()[end], 0.3, rtol=1e-5)
    assert tf.nn.softmax(sharpened[0]).numpy()[end] > 0.4  # what temperature alone gives
    assert (scores[1:] == sharpened[1:]).all()  # off for the row, not allowed at the step, or all that is left
    assert scores.shape == (4, size)


def test_the_natural_end_changes_free_poems_and_leaves_regular_ones_alone(loaded):
    decoder, keys = sampler.Decoder(loaded.model), np.arange(16)
    regular = constraints.plan([poem_request.PoemRequest(form="wujue", rhyme=True)] * 16, loaded.vocab)
    free = constraints.plan([poem_request.PoemRequest(begin="春", max_len=60)] * 16, loaded.vocab)
    written = {(name, on): decoder.decode(plan, keys=keys, temperature=0.5, top_p=0.8, natural_end=on).tokens
               for name, plan in (("regular", regular), ("free", free)) for on in (False, True)}
    assert (written["regular", True] == written["regular", False]).all()
    assert written["free", True].shape != written["free", False].shape or (
        written["free", True] != written["free", False]).any()


def test_a_free_poem_ends_only_after_a_mark_that_closes_a_sentence(loaded):
    vocab = loaded.vocab
    closes = np.isin(vocab.tokens, list(forms.COUPLET_END))
    end = processors.EndAfterSentence(free=tf.constant([True, True, True, False]), closes=tf.constant(closes))
    logits = np.zeros((4, len(vocab)), np.float32)
    logits[2] = NEG_INF
    logits[2, vocab_lib.EOS] = 0.0  # the poem's max_len: the end is all that is left
    prev = tf.constant([vocab.id("春"), vocab.id("。"), vocab.id("春"), vocab.id("春")])
    step = processors.Step(tf.constant(5), prev, None, None, model_logits=tf.constant(logits))
    out = end.apply(tf.constant(logits), (), step).numpy()
    assert out[:, vocab_lib.EOS].tolist() == [NEG_INF, 0.0, 0.0, 0.0]  # mid-line; after 。; nothing else; not free
    assert (np.delete(out, vocab_lib.EOS, axis=1) == np.delete(logits, vocab_lib.EOS, axis=1)).all()
    natural = processors.NaturalEnd(end_allowed=tf.constant(np.ones((4, 6), bool)), natural=tf.constant([True] * 4),
                                    free=end.free, closes=end.closes)
    assert natural.apply(tf.constant(out), (), step).numpy()[0, vocab_lib.EOS] == NEG_INF  # nor gives the end back
    requests = [poem_request.PoemRequest(begin=c, max_len=60) for c in "春花秋月"] * 8
    plan = constraints.plan(requests, vocab)

    def last_before_the_end(processor_tuple):
        decoded = sampler.Decoder(loaded.model, processor_tuple).decode(plan, keys=np.arange(32), natural_end=True)
        return [vocab.tokens[decoded.tokens[b][decoded.length(b) - 2]] for b in range(len(requests))
                if decoded.length(b) < plan.lengths[b]]  # ended before its max_len cut it

    unmasked = last_before_the_end(tuple(p for p in processors.PROCESSORS if p is not processors.EndAfterSentence))
    assert set(unmasked) - set(forms.COUPLET_END)  # the tiny model ends mid-line of itself
    masked = last_before_the_end(processors.PROCESSORS)
    assert masked and set(masked) <= set(forms.COUPLET_END)


def test_a_top_p_that_float32_rounds_to_zero_still_keeps_the_top_token():
    """Hypothesis found top_p=1.17e-45 (0 in float32) writing empty poems: no token was left to draw."""
    logits = tf.constant([[0.5, 2.0, -1.0]])
    for top_p in (1.168873517457605e-45, 1e-9):
        kept = processors.TopP(top_p=tf.constant([top_p], tf.float32)).apply(logits, (), None)
        assert (kept.numpy() > processors.NEG_INF / 2).tolist() == [[False, True, False]]


def test_a_new_knob_is_one_processor_in_the_tuple(loaded):
    """A processor written here, added to the tuple, acts in the loop; nothing else of the sampler changes."""

    class Ban(processors.LogitsProcessor):
        SIGNATURE = {"banned": tf.TensorSpec([None], tf.int32)}

        @classmethod
        def from_plan(cls, plan, settings):
            return {"banned": np.asarray(settings["banned"], np.int32)}

        def apply(self, logits, state, step):
            return tf.where(tf.one_hot(self.banned, tf.shape(logits)[1]) > 0, processors.NEG_INF, logits)

    requests = [poem_request.PoemRequest(begin="春", max_len=30)] * 8
    plan = constraints.plan(requests, loaded.vocab)
    plain = sampler.Decoder(loaded.model).decode(plan, keys=np.arange(8), temperature=1.5)
    common = np.bincount(plain.tokens[:, 1:].ravel(), minlength=len(loaded.vocab))
    common[[vocab_lib.PAD, vocab_lib.EOS]] = 0
    favourite = int(np.argmax(common))
    banned = sampler.Decoder(loaded.model, processors.PROCESSORS[:-1] + (Ban, processors.PROCESSORS[-1]))
    decoded = banned.decode(plan, keys=np.arange(8), temperature=1.5, banned=np.full(8, favourite))
    assert favourite not in decoded.tokens[:, 1:]  # a begin character is the plan's, not the knob's


def test_a_processor_refuses_arrays_it_does_not_take():
    with pytest.raises(TypeError, match="TopK takes"):
        processors.TopK(top_k=tf.constant([1]), top_p=tf.constant([0.5]))


def test_each_setting_a_processor_reads_is_an_option_whose_neutral_value_turns_it_off():
    names = {field for cls in processors.PROCESSORS for field in cls.SETTINGS}
    plain = SamplingOptions.plain()
    assert names <= set(SamplingOptions.__dataclass_fields__)
    assert {name: getattr(plain, name) for name in names} == {
        "temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0, "typical_p": 1.0, "keyword_bonus": 0.0, "title_bonus": 0.0,
        "line_end_bonus": 0.0, "reuse_penalty": 0.0, "repeat_penalty": 0.0, "natural_end": False,
        "double_penalty": 0.0, "couplet_repeat_penalty": 0.0, "line_end_repeat_penalty": 0.0, "free_heat": 1.0,
        "overuse_penalty": 0.0}


def test_min_p_keeps_the_characters_near_the_most_likely_and_is_per_row():
    logits = tf.math.log(tf.constant([[0.5, 0.3, 0.15, 0.05]] * 3))
    kept = processors.MinP(min_p=tf.constant([0.5, 0.2, 0.0])).apply(logits, (), None).numpy()
    assert np.isfinite(kept).tolist() == [[True, True, False, False], [True, True, True, False], [True] * 4]


def test_typical_p_keeps_the_characters_as_surprising_as_the_step_is_uncertain():
    # Entropy of (0.5, 0.3, 0.15, 0.05) is 1.14 nats; surprisals are 0.69, 1.20, 1.90, 3.00.
    logits = tf.math.log(tf.constant([[0.5, 0.3, 0.15, 0.05]] * 4))
    kept = processors.TypicalP(typical_p=tf.constant([0.2, 0.7, 0.9, 1.0])).apply(logits, (), None).numpy()
    assert np.isfinite(kept).tolist() == [
        [False, True, False, False],  # the most typical character alone, though it is not the likeliest
        [True, True, False, False],  # then the likeliest (0.45 from the entropy), 0.8 in all
        [True, True, True, False],
        [True] * 4,
    ]
    masked = tf.math.log(tf.constant([[0.6, 0.0, 0.0, 0.4]]))  # a row the masks left two characters
    kept = processors.TypicalP(typical_p=tf.constant([0.5])).apply(masked, (), None).numpy()
    assert np.isfinite(kept).tolist() == [[True, False, False, False]] and not np.isnan(kept).any()


def test_the_nucleus_from_a_shortlist_is_the_one_a_whole_sort_finds():
    """Peaked rows find their nucleus among SHORTLIST characters, flat ones sort the whole vocabulary: same answer."""
    rng = np.random.default_rng(0)
    vocabulary = 4 * processors.SHORTLIST
    logits = rng.normal(size=(6, vocabulary)) * np.array([[0.1], [0.5], [2.0], [4.0], [8.0], [8.0]])
    logits[5, 3:] = -np.inf  # a row the masks left three characters
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    mass = np.array([0.9, 0.95, 0.9, 0.5, 0.95, 0.99], np.float32)
    for scores in (logits, -np.abs(logits - 1.0)):  # top-p's order, and typical sampling's kind
        floor = processors.nucleus_floor(tf.constant(scores, tf.float32), tf.constant(probabilities, tf.float32),
                                         tf.constant(mass)).numpy()
        for row in range(6):
            order = np.argsort(-scores[row], kind="stable")
            before = np.cumsum(probabilities[row][order]) - probabilities[row][order]
            assert floor[row] == pytest.approx(scores[row][order][before < mass[row]].min(), rel=1e-6)
    shortlist_holds = np.sort(probabilities, axis=1)[:, ::-1][:, :processors.SHORTLIST].sum(axis=1)
    assert (shortlist_holds[:2] < mass[:2]).all() and (shortlist_holds[3:] >= mass[3:]).all()  # both ways ran


def test_typical_p_is_a_sampling_option_on_every_face(loaded):
    requests = [poem_request.PoemRequest(begin="春", max_len=20)] * 4
    wide = generate(loaded, requests, SamplingOptions.plain(temperature=2.0, seed=3))
    typical = generate(loaded, requests, SamplingOptions.plain(temperature=2.0, seed=3, typical_p=0.2))
    assert [p.content for p in typical] != [p.content for p in wide]
    with pytest.raises(PoetryError, match="typical_p"):
        SamplingOptions(typical_p=0.0)


def test_min_p_writes_poems_the_model_finds_more_likely(loaded):
    requests = [poem_request.PoemRequest(begin="春", max_len=20)] * 4
    wide = generate(loaded, requests, SamplingOptions.plain(temperature=2.0, seed=3))
    narrow = generate(loaded, requests, SamplingOptions.plain(temperature=2.0, seed=3, min_p=0.9))
    assert np.mean([p.mean_logprob for p in narrow]) > np.mean([p.mean_logprob for p in wide])


@pytest.mark.parametrize("source", ["checkpoint", "compact"])
def test_a_bfloat16_poet_computes_in_bfloat16_and_writes_the_same_model_s_poems(tiny_model_dir, tmp_path, source):
    """``precision="bfloat16"`` halves the weights each step reads; it must still be the same model, and both
    ways of storing a model (a checkpoint's float32 variables, a compact folder's float16 arrays) must load."""
    from poetry_rnn import poet as poet_lib
    from poetry_rnn.verse import validator

    model_dir = tiny_model_dir
    if source == "compact":
        model_dir = str(tmp_path / "compact")
        store.save_compact(store.load(tiny_model_dir), model_dir)
    exact, half = (poet_lib.load(model_dir, precision=p).loaded.model for p in ("float32", "bfloat16"))
    assert {v.dtype for v in half.weights} == {"bfloat16"} and {v.dtype for v in exact.weights} == {"float32"}
    ids = tf.constant(np.arange(4, 36, dtype=np.int32))
    probs = [tf.nn.softmax(tf.cast(m.step(ids, m.initial_states(32))[0], tf.float32)).numpy() for m in (exact, half)]
    assert 0 < np.max(np.abs(probs[0] - probs[1])) < 0.02  # bf16 rounding, not another model
    for poem in poet_lib.load(model_dir, precision="bfloat16").write(form="wujue", rhyme=True, tones="loose", num=4,
                                                                      seed=2):
        request = poem_request.PoemRequest(form="wujue", rhyme=True, tones="loose", tone_start=poem.tone_start)
        assert validator.check_poem(poem.text, request) == []


def test_auto_precision_is_bfloat16_only_where_the_cpu_computes_it_natively(monkeypatch):
    from poetry_rnn.infra import hardware
    from poetry_rnn.options import ModelOptions

    for native, expected in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(hardware, "bf16_is_native", lambda native=native: native)
        assert ModelOptions().resolved() == expected
        assert ModelOptions(precision="float32").resolved() == "float32"  # asked for: kept


def test_the_forcing_is_what_the_masks_took_from_the_models_own_distribution(loaded):
    requests = [poem_request.PoemRequest(form="wujue", template="春????，?????。?????，????秋。")] * 6
    plan = constraints.plan(requests, loaded.vocab)
    masks_only = sampler.Decoder(loaded.model, (processors.Form, processors.GumbelNoise))
    decoded = masks_only.decode(plan, keys=np.arange(6), temperature=1.5)
    steps = decoded.tokens.shape[1]
    ids = np.concatenate([np.full((6, 1), vocab_lib.BOS), decoded.tokens], axis=1).astype(np.int32)
    own = tf.nn.softmax(tf.cast(loaded.model(ids[:, :-1])[0], tf.float32)).numpy()  # (B, T, V)
    allowed = plan.mask_table[plan.step_masks[:, :steps]]  # (B, T, V)
    taken = -np.log(np.sum(own * allowed, axis=-1))
    expected = [taken[b, : decoded.length(b)].sum() for b in range(6)]
    np.testing.assert_allclose(decoded.forced, expected, rtol=1e-3)
    # At a step the template fixes, the mask took all but that character: its log p, once.
    assert (taken[:, 0] == pytest.approx(-decoded.logprobs[:, 0], abs=1e-3))
    assert (decoded.forced > -decoded.logprobs[:, 0] - 1e-3).all()
    free = masks_only.decode(constraints.plan([poem_request.PoemRequest(max_len=40)] * 6, loaded.vocab),
                             keys=np.arange(6), temperature=1.5)
    assert free.forced.max() < decoded.forced.min()  # a free poem's masks take almost nothing


def test_ranking_by_forcing_keeps_the_draft_the_masks_forced_least(loaded):
    request = poem_request.PoemRequest(form="wujue", rhyme=True)
    decoder, sampling = sampler.Decoder(loaded.model), SamplingOptions.plain(seed=4, best_of=8)
    options, _ = drafts.draft_poems(decoder, loaded.vocab, [request], sampling)
    per_token = lambda p: p.forced / len(p.logprobs)  # noqa: E731
    assert len({round(per_token(p), 4) for p in options}) == 8
    least = drafts.generate(decoder, loaded.vocab, [request], sampling, ranking=ranking.Ranking(forcing_weight=1e4))
    assert least[0].content == min(options, key=per_token).content
    likeliest = drafts.generate(decoder, loaded.vocab, [request], sampling)[0]
    assert likeliest.content == max(options, key=lambda p: p.mean_logprob).content
