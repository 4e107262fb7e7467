"""Batched in-graph decoding vs the seeds' eager loop, side by side in one run.

    python benchmarks/decode_speed.py [--model_dir checkpoints/default] [--poems 64]

(a) ours: 64 七绝 with rhyme and loose 平仄 in one ``drafts.generate`` call
    (one tf.function, a tf.while_loop over the batch);
(b) the seeds' way: the same 64 poems one at a time, one eager model call
    per character from Python, sampling in numpy under the same masks.
Prints characters/s for each, the ratio, and the latency of one constrained
poem. Without --model_dir it uses an untrained LSTM 2x512 over a 6,600-token
vocabulary: speed does not depend on the weights.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from poetry_rnn.generation import constraints, drafts, sampler
from poetry_rnn.options import SamplingOptions
from poetry_rnn.model import store, vocab as vocab_lib
from poetry_rnn.verse import poem_request, validator  # noqa: E402
from poetry_rnn.model.network import ModelConfig, PoetryModel  # noqa: E402


def untrained(vocab_size=6600):
    import pypinyin.constants  # a realistic vocabulary: the commonest Han characters pypinyin knows

    chars = [chr(c) for c in sorted(pypinyin.constants.PINYIN_DICT) if 0x4E00 <= c <= 0x9FFF][:vocab_size]
    vocab = vocab_lib.Vocab(vocab_lib.RESERVED + tuple("，。？！") + tuple(chars))
    return PoetryModel(ModelConfig(vocab_size=len(vocab))), vocab


def eager_loop(model, plan, seed=0):
    """One poem at a time, one eager ``model.step`` per character, numpy sampling."""
    rng = np.random.default_rng(seed)
    characters = 0
    for b in range(plan.step_masks.shape[0]):
        states = model.initial_states(1)
        token = vocab_lib.BOS
        groups, used = plan.initial_groups[b].copy(), set()
        for t in range(int(plan.lengths[b])):
            logits, states = model.step(np.array([token], np.int32), states)
            allowed = plan.mask_table[plan.step_masks[b, t]].copy()
            if s := plan.rhyme_set[b, t]:
                allowed &= plan.group_members[groups[s - 1]].any(axis=0)
                allowed[list(used)] = False
            z = np.where(allowed, logits.numpy()[0] / 0.8, -np.inf)
            p = np.exp(z - z.max())
            token = int(rng.choice(len(p), p=p / p.sum()))
            if s:
                groups[s - 1] &= plan.group_members[:, token]
                used.add(token)
            characters += 1
            if token == vocab_lib.EOS:
                break
    return characters


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default=None)
    parser.add_argument("--poems", type=int, default=64)
    args = parser.parse_args()
    if args.model_dir:
        loaded = store.load(args.model_dir)
        model, vocab = loaded.model, loaded.vocab
    else:
        model, vocab = untrained()
    request = poem_request.PoemRequest(form="qijue", rhyme=True, tones="loose")
    decoder = sampler.Decoder(model)
    drafts.generate(decoder, vocab, [request] * args.poems, SamplingOptions.plain(seed=0))  # trace once
    drafts.generate(decoder, vocab, [request], SamplingOptions.plain(seed=0))

    started = time.perf_counter()
    poems = drafts.generate(decoder, vocab, [request] * args.poems, SamplingOptions.plain(seed=1))
    batched_s = time.perf_counter() - started
    batched_chars = sum(len(p.logprobs) for p in poems)
    assert all(not validator.check_poem(p.content, request) for p in poems)

    plan = constraints.plan([request] * args.poems, vocab, model.config)
    started = time.perf_counter()
    eager_chars = eager_loop(model, plan)
    eager_s = time.perf_counter() - started

    latencies = []
    for seed in range(20):
        started = time.perf_counter()
        drafts.generate(decoder, vocab, [request], SamplingOptions.plain(seed=seed))
        latencies.append(time.perf_counter() - started)

    ours, seeds = batched_chars / batched_s, eager_chars / eager_s
    print(f"model: {model.config.layers}x{model.config.units} {model.config.cell}, vocabulary {len(vocab)}")
    print(f"batched in-graph, {args.poems} 七绝 in one call: {batched_s:.3f} s, {ours:,.0f} characters/s")
    print(f"eager per-character loop, same {args.poems} poems: {eager_s:.2f} s, {seeds:,.0f} characters/s")
    print(f"speed-up: {ours / seeds:.0f}x")
    print(f"one constrained 七绝 (rhyme, loose 平仄): median {statistics.median(latencies) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms over {len(latencies)} calls (plan + decode)")


if __name__ == "__main__":
    main()
