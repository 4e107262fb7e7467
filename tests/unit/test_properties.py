"""Property-based tests: the corpus reader, the vocabulary file, and the real decoder's masks.

The constraint masks are already checked against a numpy reference sampler
in test_constraints.py; here the same kind of random requests (both rhyme
schemes, loose rhymes, the no-repeat mask on and off) go through the
in-graph TensorFlow decoder (``sampler.Decoder``) driving an untrained model
whose logits are random (and made lopsided per example), so the masks alone
must keep every poem valid.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st

from poetry_rnn.generation import constraints, drafts, sampler
from poetry_rnn.corpus import reading
from poetry_rnn.verse import forms, poem_request, prosody, tone_patterns, validator
from poetry_rnn.model import vocab as vocab_lib
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model.network import CONDITIONS, ModelConfig, PoetryModel
from poetry_rnn.model.vocab import BOS, EOS, PAD, RESERVED, SEP, UNK, Vocab
from poetry_rnn.options import SamplingOptions
from test_constraints import COMMON, OTHER, poem_requests, prompt_ids

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that stresses the reader: colons of both widths, every line-break
# character, BOMs, whitespace, Han characters, and anything else.
TRICKY = ":：\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\ufeff \t，。春花"
tricky_text = st.text(st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8")), max_size=60)


# --------------------------------------------------------------------------
# The corpus reader


@FAST
@given(st.lists(tricky_text, max_size=12), st.integers(1, 30))
def test_read_poems_keeps_only_clean_poems(tmp_path_factory, lines, max_len):
    path = tmp_path_factory.mktemp("corpus") / "poems.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        poems, stats = reading.read_poems(path, max_len)
    except PoetryError as error:
        assert "no usable poems" in str(error)
        return
    assert poems and stats.kept == len(poems)
    assert stats.kept + sum(stats.skipped.values()) <= stats.lines
    for poem in poems:
        assert poem.content and poem.content == poem.content.strip()
        assert 0 < len(poem.content) <= max_len
        assert not set(":：") & set(poem.content + poem.title)
        assert vocab_lib.LINE_BREAKS.isdisjoint(poem.content + poem.title)


@FAST
@given(st.binary(max_size=200))
def test_read_poems_on_any_bytes_raises_only_poetry_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "poems.txt"
    path.write_bytes(data)
    try:
        poems, _ = reading.read_poems(path)
    except PoetryError:
        return
    assert all(p.content and ":" not in p.content and "：" not in p.content for p in poems)


@FAST
@given(tricky_text)
def test_parse_line_never_raises_and_splits_on_the_first_colon(line):
    poem, reason = reading.parse_line(line)
    assert (poem is None) != (reason is None)
    if poem is not None:
        assert poem.content and not set(":：") & set(poem.content + poem.title)
        assert line.strip().startswith(poem.title) and line.strip().endswith(poem.content)


# --------------------------------------------------------------------------
# The vocabulary


@FAST
@given(st.lists(st.text(max_size=30), max_size=5))
def test_vocab_encodes_and_decodes_any_text(texts):
    v = Vocab.build(texts, min_count=1)
    for text in texts:
        expected = "".join("□" if c in vocab_lib.LINE_BREAKS else c for c in text)
        assert v.decode(v.encode(text)) == expected


@FAST
@given(st.lists(st.text(TRICKY + "<>pad□ 字a", max_size=30), max_size=5))
def test_a_built_vocab_always_reads_back_from_its_file(tmp_path_factory, texts):
    v = Vocab.build(texts, min_count=1)
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    v.save(path)
    loaded = Vocab.load(path)
    assert loaded == v and loaded.fingerprint == v.fingerprint


token = st.text(st.characters(codec="utf-8", exclude_characters=sorted(vocab_lib.LINE_BREAKS)), min_size=1, max_size=3)


@FAST
@given(st.lists(token, unique=True, max_size=20))
def test_any_token_list_round_trips_through_the_file(tmp_path_factory, tokens):
    assume(not set(tokens) & set(RESERVED))
    v = Vocab(RESERVED + tuple(tokens))
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    v.save(path)
    assert Vocab.load(path).tokens == v.tokens


@pytest.mark.parametrize("brk", sorted(vocab_lib.LINE_BREAKS))
def test_line_breaks_are_never_tokens(brk):
    v = Vocab.build([f"春{brk}花"], min_count=1)
    assert brk not in v.tokens and v.encode(brk) == [UNK]
    with pytest.raises(PoetryError, match="line break"):
        Vocab(RESERVED + ("春", f"a{brk}"))


# --------------------------------------------------------------------------
# The real decoder under random logits

# One vocabulary size for every example, so one model and one traced decoder
# serve them all: a random subset of COMMON, padded with non-Han fillers.
SIZE = len(RESERVED) + len(COMMON) + len(OTHER)
FILLERS = tuple(chr(0x100 + i) for i in range(len(COMMON)))  # Latin Extended: not Han, no prosody


@pytest.fixture(scope="module")
def model_and_decoder():
    model = PoetryModel(ModelConfig(vocab_size=SIZE, units=16, embed_dim=8, layers=2))
    return model, sampler.Decoder(model)


@st.composite
def vocab_and_requests(draw):
    if draw(st.booleans()):
        alphabet = COMMON
    else:
        alphabet = "".join(draw(st.lists(st.sampled_from(COMMON), min_size=15, max_size=80, unique=True)))
    tokens = RESERVED + tuple(alphabet) + OTHER
    tokens += FILLERS[: SIZE - len(tokens)]
    return Vocab(tokens), draw(st.lists(poem_requests(alphabet), min_size=1, max_size=3))


@SLOW
@given(
    case=vocab_and_requests(),
    condition=st.sampled_from(CONDITIONS),
    sampling=st.tuples(st.sampled_from([0.0, 0.7, 1.0, 5.0]), st.sampled_from([0, 1, 7]), st.sampled_from([1.0, 0.6, 0.01])),
    bias_scale=st.sampled_from([0.0, 3.0, 30.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_the_tf_decoder_keeps_every_constraint(model_and_decoder, case, condition, sampling, bias_scale, seed):
    model, decoder = model_and_decoder
    vocab, requests = case
    if any(r.keywords for r in requests):
        condition = "keywords"
    try:
        plan = constraints.plan(requests, vocab, ModelConfig(condition=condition))
    except PoetryError as error:
        note(f"rejected: {error}")
        event("request rejected by plan")
        return
    event("decoded")
    # A lopsided model: a random strong preference per example (the same
    # vocabulary ids every step), on top of the untrained network's logits.
    model.head.bias.assign(np.random.default_rng(seed).normal(size=SIZE).astype(np.float32) * bias_scale)
    temperature, top_k, top_p = sampling
    # keywords and titles pulled hard too
    decoded = decoder.decode(plan, temperature=temperature, top_k=top_k, top_p=top_p, keys=seed,
                             keyword_bonus=bias_scale, title_bonus=bias_scale)
    assert decoded.ended.all(), "every plan ends in an EOS-only step"
    for b, request in enumerate(requests):
        steps = decoded.length(b)
        tokens = decoded.tokens[b, :steps]
        if request.form != "free" or request.template or not request.stop_at_eos:
            assert steps == plan.lengths[b]  # a fixed shape: every step is taken
        else:
            assert steps <= plan.lengths[b]
        for t, token in enumerate(tokens):
            assert plan.mask_table[plan.step_masks[b, t], token], f"poem {b} step {t}: token {token} is masked out"
        assert tokens[-1] == EOS and EOS not in tokens[:-1].tolist()
        start = plan.content_start[b]
        content_ids = set(tokens[start:].tolist())
        assert not {PAD, UNK, BOS, SEP} & content_ids
        assert list(tokens[:start]) == prompt_ids(vocab, condition, request)
        content = vocab.decode(tokens[start:])
        note(f"poem {b}: {content!r} for {request}")
        problems = validator.check_poem(content, request)
        if not plan.repeat_guaranteed[b]:  # a vocabulary too small to promise it: only repeats may slip
            problems = [p for p in problems if not p.startswith("repeats")]
        assert problems == []
        if request.scheme == "xinyun" and not (request.begin or request.acrostic or request.template):
            # free characters are heard as the masks chose them (fixed ones are the user's)
            lines = [line[:-1] for line in forms.split_lines(content)]
            if request.rhyme:
                assert prosody.heard_rhyme_ok(lines, request.first_line_rhymes), content
            if request.tones != "off":
                shape = forms.FORMS[request.form]
                pattern = tone_patterns.relax(tone_patterns.tone_pattern(
                    shape.chars_per_line, shape.lines, request.tone_start, request.first_line_rhymes), request.tones)
                assert prosody.heard_tones_ok(lines, pattern), content


@pytest.mark.parametrize("form", ["qijue", "wulv"])
def test_no_rhyme_repeats_the_last_character_of_an_earlier_line(model_and_decoder, form):
    """A model that loves 飞 ends the first line with it; the rhymes after it must find others (飞...飞 is heard)."""
    model, decoder = model_and_decoder
    vocab = Vocab(RESERVED + tuple(COMMON) + OTHER)
    request = poem_request.PoemRequest(form=form, rhyme=True, allow_repeats=True)  # 飞 wherever it may go
    plan = constraints.plan([request], vocab)
    shape = forms.FORMS[form]
    ends = [(shape.chars_per_line + 1) * (k + 1) - 2 for k in range(shape.lines)]  # the step of each line's end
    assert [t for t in range(plan.lengths[0]) if plan.rhyme_watch[0, t]] == ends[0::2]  # the lines that do not rhyme
    bias = np.zeros(SIZE, np.float32)
    bias[[vocab.id(c) for c in "飞归"]] = [30.0, 20.0]
    model.head.bias.assign(bias)
    content = vocab.decode(decoder.decode(plan, temperature=0.0, keys=0).tokens[0])
    lines = [line[:-1] for line in forms.split_lines(content)]
    assert lines[0][-1] == "飞" and lines[1][-1] == "归", content
    assert all(lines[k][-1] not in {line[-1] for line in lines[:k]} for k in range(1, len(lines), 2)), content
    assert validator.check_poem(content, request) == []


def test_generate_on_the_same_decoder_gives_valid_poems(model_and_decoder):
    model, decoder = model_and_decoder
    vocab = Vocab(RESERVED + tuple(COMMON) + OTHER)
    requests = [
        poem_request.PoemRequest(form="qilv", rhyme=True, tones="strict", first_line_rhymes=True),
        poem_request.PoemRequest(form="wujue", acrostic="春夏秋冬", rhyme=True),
        poem_request.PoemRequest(template="春风??????，???????。"),
    ]
    poems = drafts.generate(decoder, vocab, requests, SamplingOptions.plain(temperature=1.0, seed=4))
    for poem, request in zip(poems, requests):
        assert validator.check_poem(poem.content, request) == [], poem.content
