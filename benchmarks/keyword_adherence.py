"""Do poems follow the keywords and titles they are given? Each model beside itself without them.

    python benchmarks/keyword_adherence.py --corpus data/poems.txt \
        --model_dirs checkpoints/default runs/keywords [--count 200] [--form qijue] [--bonuses 0 3] \
        [--title_bonuses 0 1.5] [--critic_weight 0.2] [--precisions float32,bfloat16] \
        [--setting default --setting typical_p=1.0 ...]

The prompts come from held-out poems (the test split, which no model here
trained on): for each, two distinct Han characters of its own content (the
keywords, drawn with a fixed seed) and its title. Every model writes one
poem per prompt in ``--form`` with ``--rhyme``, through the facade
(``poet.Poet``), with the default sampling (or each ``--setting`` in turn,
as ``realism.py`` takes them) and the same seed per prompt:

* without keywords: how often those characters turn up anyway (chance);
* with ``--keywords`` at each ``--keyword_bonus`` of ``--bonuses`` (0: a
  keywords model's prompt alone; an unconditioned model then writes as
  without keywords);
* with ``--title`` at each ``--title_bonus`` of ``--title_bonuses`` (0: a
  title or keywords model's prompt alone; an unconditioned model then
  writes as without a title).

Measures: the share of keywords in the poem, the share of poems holding
both, the share of the title's characters (those in the vocabulary) in the
poem, the same for its topic characters alone (``titles.weight`` at least
TOPIC: those poets usually write into the poem, 梅 of 咏梅 but not 咏);
beyond the prompt's own characters, the share of the poem's other
characters that Tang poets write beside the keywords or the title's
characters (``quality.Cooccurrence`` of the training split: 舟帆岸 beside
江); and what the pull costs: the written poems' per-character perplexity
under a 5-gram fitted on the training split (real poems of the form: the
test split's). A real poet's own adherence is printed for reference.
"""

import argparse
import itertools
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from poetry_rnn.corpus import reading, split, titles
from poetry_rnn.verse import forms, prosody
from poetry_rnn.evaluation import ngram, quality
from poetry_rnn import poet as poet_lib  # noqa: E402
from poetry_rnn import options
from poetry_rnn.options import SamplingOptions  # noqa: E402
from realism import parse_setting  # noqa: E402  (this folder's: the same settings as the realism benchmark)

KEYWORDS = 2  # per prompt
TOPIC = 0.5  # titles.weight of a topic character


def prompts(poems, vocab, count, seed):
    """[(keywords, title, real content)]: two of each held-out poem's own characters, and its title.

    Poems whose title (its Han characters in the vocabulary) is empty or
    longer than ``write`` takes are skipped.
    """
    rng = np.random.default_rng(seed)
    out = []
    for poem in poems:
        chars = sorted({c for c in poem.content if prosody.is_han(c) and c in vocab})
        title = "".join(c for c in poem.title if prosody.is_han(c) and c in vocab)
        if len(chars) < KEYWORDS or not title or len(title) > options.MAX_TITLE:
            continue
        out.append(("".join(rng.choice(chars, KEYWORDS, replace=False)), title, poem.content))
        if len(out) == count:
            break
    return out


def share_in(chars, text):
    return sum(c in text for c in chars) / len(chars)


def topic_share(prompt_list, texts):
    """Share of the titles' topic characters (weight >= TOPIC) that ``texts`` hold, over all prompts."""
    pairs = [(c, text) for (_, title, _), text in zip(prompt_list, texts) for c in set(title) if titles.weight(c) >= TOPIC]
    return np.mean([c in text for c, text in pairs])


def beside(prompt_list, texts, table, which):
    """Mean ``quality.related_share`` of ``texts`` to their prompts' keywords (which=0) or titles (which=1)."""
    return np.nanmean([quality.related_share(text, prompt[which], table) for prompt, text in zip(prompt_list, texts)])


def write_all(poet, prompt_list, form, seed, keywords=False, title=False, **options):
    """One poem per prompt, with its keywords and/or its title when asked, and ``options`` for all."""
    asks = []
    for k, (prompt_keywords, prompt_title, _) in enumerate(prompt_list):
        given = {**({"keywords": [prompt_keywords]} if keywords else {}), **({"title": prompt_title} if title else {})}
        asks.append(poet_lib.make_ask(form=form, rhyme=True, **given, **options, sampling=SamplingOptions(seed=seed + k)))
    return [poems[0].text for poems in poet.write_asks(asks)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--model_dirs", nargs="+", required=True)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--form", default="qijue")
    parser.add_argument("--bonuses", type=float, nargs="+", default=[0.0, SamplingOptions.keyword_bonus])
    parser.add_argument("--title_bonuses", type=float, nargs="+", default=[0.0, SamplingOptions.title_bonus])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--critic_weight", type=float, default=SamplingOptions.critic_weight,
                        help="rank drafts with the model's critic too (it must carry one)")
    parser.add_argument("--precisions", default=options.ModelOptions.precision,
                        help="each model decoded at each of these (write --precision), side by side")
    parser.add_argument("--setting", action="append", default=None,
                        help="sampling beside write's defaults (default), each in turn, e.g. typical_p=1.0")
    args = parser.parse_args()

    all_poems, _ = reading.read_poems(args.corpus)
    train, held_out = split.split_train_valid(all_poems, 0.02)
    _, test = split.split_held_out(held_out)
    loads = [(d, p) for d in args.model_dirs for p in args.precisions.split(",")]
    poets = [poet_lib.load(d, p) for d, p in loads]
    vocab = poets[0].loaded.vocab
    lm = ngram.KneserNey(order=5, vocab=vocab.chars).fit(p.content for p in train)
    table = quality.Cooccurrence(p.content for p in train)
    prompt_list = prompts(test, vocab, args.count, args.seed)
    own = [content for *_, content in prompt_list]
    real_title = np.mean([share_in(title, content) for _, title, content in prompt_list])
    real = [p.content for p in test if forms.classify(p.content) == args.form]
    real_topic = topic_share(prompt_list, own)
    print(f"{len(prompt_list)} prompts from the test split; real poems hold {real_title:.1%} of their title's "
          f"characters and {real_topic:.1%} of its topic characters; of their other characters "
          f"{beside(prompt_list, own, table, 0):.1%} are related to the keywords, {beside(prompt_list, own, table, 1):.1%}"
          f" to the title; the test split's {len(real)} real {args.form} score {lm.score(real).perplexity:.1f} under the 5-gram")
    print("| model | written with | keywords in the poem | poems with both | related to the keywords "
          "| title characters in the poem | topic characters | related to the title | 5-gram perplexity |")
    print("|---|---|---|---|---|---|---|---|---|")
    for ((model_dir, precision), poet), setting in itertools.product(zip(loads, poets), args.setting or ["default"]):
        overrides = parse_setting(setting)
        runs = [("nothing (chance)", {})]
        runs += [(f"keywords, bonus {b:g}", {"keywords": True, "keyword_bonus": b}) for b in args.bonuses]
        runs += [(f"title, bonus {b:g}", {"title": True, "title_bonus": b}) for b in args.title_bonuses
                 if b or poet.loaded.config.condition != "none"]
        for label, given in runs:
            texts = write_all(poet, prompt_list, args.form, args.seed,
                              **{"critic_weight": args.critic_weight, **overrides, **given})
            keyword_share = np.mean([share_in(k, t) for (k, _, _), t in zip(prompt_list, texts)])
            both = np.mean([share_in(k, t) == 1 for (k, _, _), t in zip(prompt_list, texts)])
            title_share = np.mean([share_in(title, t) for (_, title, _), t in zip(prompt_list, texts)])
            print(f"| {model_dir} ({precision}{'' if setting == 'default' else ', ' + setting}) | {label} | {keyword_share:.1%} | {both:.1%} | {beside(prompt_list, texts, table, 0):.1%} | "
                  f"{title_share:.1%} | {topic_share(prompt_list, texts):.1%} | {beside(prompt_list, texts, table, 1):.1%} | "
                  f"{lm.score(texts).perplexity:.1f} |", flush=True)


if __name__ == "__main__":
    main()
