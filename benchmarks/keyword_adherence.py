"""Do poems follow the keywords and titles they are given? Conditioned models beside an unconditioned one.

    python benchmarks/keyword_adherence.py --corpus data/poems.txt \
        --model_dirs checkpoints/default runs/keywords [--count 300] [--form qijue]

The prompts come from held-out poems (the test split, which no model here
trained on): for each, two distinct Han characters of its own content (the
keywords, drawn with a fixed seed) and its title. Every model writes one
poem per prompt in ``--form`` with ``--rhyme``, through the facade
(``poet.Poet``), with the default sampling:

* a keywords model gets the keywords (``--keywords``), then the title (``--title``);
* a model that cannot take the prompt writes without it, from the same seed:
  how often those characters turn up anyway is the chance rate to beat.

Measures: the share of keywords that appear in the poem, the share of poems
with every keyword, and the share of the title's characters (those in the
vocabulary) that appear in the poem; beside them the same share for the
real poem the title belongs to (a real poet's own "adherence" to the title).
"""

import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from poetry_rnn import corpus, dataset, poet as poet_lib, prosody  # noqa: E402
from poetry_rnn.options import SamplingOptions  # noqa: E402

KEYWORDS = 2


def prompts(poems, vocab, count, seed):
    """[(keywords, title, real content)]: two of each held-out poem's own characters, and its title."""
    rng = np.random.default_rng(seed)
    out = []
    for poem in poems:
        chars = sorted({c for c in poem.content if prosody.is_han(c) and c in vocab})
        title = "".join(c for c in poem.title if prosody.is_han(c) and c in vocab)
        if len(chars) < KEYWORDS or not title:
            continue
        out.append(("".join(rng.choice(chars, KEYWORDS, replace=False)), title, poem.content))
        if len(out) == count:
            break
    return out


def share_in(chars, text):
    return sum(c in text for c in chars) / len(chars)


def write_all(poet, prompt_list, field, form, seed):
    """One poem per prompt, each with ``field`` (keywords or title) when the model takes it."""
    takes = poet.loaded.config.condition == "keywords" or (field == "title" and poet.loaded.config.condition == "title")
    asks = []
    for k, (keywords, title, _) in enumerate(prompt_list):
        given = {"keywords": [keywords]} if field == "keywords" else {"title": title}
        asks.append(poet_lib.make_ask(form=form, rhyme=True, **(given if takes else {}),
                                      sampling=SamplingOptions(seed=seed + k)))
    return [poems[0].text for poems in poet.write_asks(asks)], takes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--model_dirs", nargs="+", required=True)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--form", default="qijue")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    all_poems, _ = corpus.read_poems(args.corpus)
    _, held_out = dataset.split_train_valid(all_poems, 0.02)
    _, test = dataset.split_held_out(held_out)
    poets = [poet_lib.load(d) for d in args.model_dirs]
    prompt_list = prompts(test, poets[0].loaded.vocab, args.count, args.seed)
    real_title = np.mean([share_in(title, content) for _, title, content in prompt_list])
    print(f"{len(prompt_list)} prompts from the test split; real poems hold {real_title:.1%} of their title's characters")
    print("| model | given | keywords in the poem | poems with both keywords | given | title characters in the poem |")
    print("|---|---|---|---|---|---|")
    for model_dir, poet in zip(args.model_dirs, poets):
        by_keywords, took_keywords = write_all(poet, prompt_list, "keywords", args.form, args.seed)
        by_title, took_title = write_all(poet, prompt_list, "title", args.form, args.seed)
        keyword_share = np.mean([share_in(k, text) for (k, _, _), text in zip(prompt_list, by_keywords)])
        all_in = np.mean([share_in(k, text) == 1 for (k, _, _), text in zip(prompt_list, by_keywords)])
        title_share = np.mean([share_in(t, text) for (_, t, _), text in zip(prompt_list, by_title)])
        print(f"| {model_dir} | {'keywords' if took_keywords else 'nothing (chance)'} | {keyword_share:.1%} | "
              f"{all_in:.1%} | {'title' if took_title else 'nothing (chance)'} | {title_share:.1%} |")


if __name__ == "__main__":
    main()
