"""Same seed, same poems: what ``write`` prints for a fixed set of commands, to compare across commits.

    python benchmarks/same_poems.py --out before.json     # at one commit
    python benchmarks/same_poems.py --out after.json --against before.json   # at another

Each case runs ``python -m poetry_rnn.write`` as a user would (a fresh
process, the shipped default model, a fixed seed): free poems, each form
with rhyme and tones, acrostic, template, keywords, title, and a lyrics
model's continuations (a tiny lyrics model trained here with a fixed seed
on synthetic text, through ``python -m poetry_rnn.train``). Only the command
line is used, so the script runs unchanged on any commit whose flags are
the same. ``--against`` prints each case that differs and exits 1 if any does.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from conftest import synthetic_poems  # noqa: E402

SEED = ["--seed", "3"]
CASES = {
    "free": ["--begin", "日", "红", "山", "夜"],
    "free-num": ["--num", "3", "--max_len", "40"],
    "wujue-rhyme-tones": ["--form", "wujue", "--rhyme", "--tones", "--num", "2"],
    "qijue-rhyme-tones": ["--form", "qijue", "--rhyme", "--tones", "--begin", "春", "秋"],
    "wulv-rhyme-strict": ["--form", "wulv", "--rhyme", "--tones", "strict", "--scheme", "pingshui"],
    "qilv-rhyme-tones": ["--form", "qilv", "--rhyme", "--tones", "--first_line_rhymes"],
    "acrostic": ["--form", "qijue", "--acrostic", "春夏秋冬", "--rhyme"],
    "template": ["--template", "春风???，???月?。?????，?????。"],
    "keywords": ["--form", "qijue", "--rhyme", "--keywords", "江", "月", "--num", "2"],
    "title": ["--form", "wulv", "--rhyme", "--tones", "--title", "秋夜"],
    "greedy-topk": ["--form", "wujue", "--temperature", "0", "--best_of", "1"],
    "topk-no-reuse": ["--form", "qijue", "--top_k", "20", "--top_p", "1", "--reuse_penalty", "0", "--num", "3"],
    "jsonl": ["--form", "wujue", "--rhyme", "--format", "jsonl", "--best_of", "2"],
}


def run(args, env):
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    return done.stdout + (f"[exit {done.returncode}] {done.stderr.strip().splitlines()[-1:]}" if done.returncode else "")


def lyrics_model(folder, env):
    """A tiny lyrics model, trained the same way at every commit."""
    text = os.path.join(folder, "lyrics.txt")
    with open(text, "w", encoding="utf-8") as handle:
        handle.write("\n".join(content for _, content in synthetic_poems(60, seed=3)))
    model_dir = os.path.join(folder, "lyrics")
    run(["-m", "poetry_rnn.train", "--corpus", "lyrics", "--data", text, "--model_dir", model_dir, "--units", "16",
         "--embed_dim", "8", "--num_steps", "10", "--batch_size", "8", "--epochs", "2", "--samples", "0",
         "--seed", "7"], env)
    return model_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file of each case's output")
    parser.add_argument("--against", help="an earlier --out to compare with")
    args = parser.parse_args()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    outputs = {}
    for name, flags in CASES.items():
        outputs[name] = run(["-m", "poetry_rnn.write", *flags, *SEED], env)
        print(name, len(outputs[name]), "characters", file=sys.stderr)
    with tempfile.TemporaryDirectory() as folder:
        model_dir = lyrics_model(folder, env)
        outputs["lyrics"] = run(["-m", "poetry_rnn.write", "--model_dir", model_dir, "--prefix", "春风", "月",
                                 "--length", "30", *SEED], env)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(outputs, handle, ensure_ascii=False, indent=1)
    if args.against:
        with open(args.against, encoding="utf-8") as handle:
            before = json.load(handle)
        differ = [name for name in {**before, **outputs} if before.get(name) != outputs.get(name)]
        for name in differ:
            print(f"differs: {name}\n  before: {before.get(name)!r}\n  after:  {outputs.get(name)!r}")
        print(f"{len(outputs) - len(differ)} of {len(outputs)} cases print the same bytes")
        sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
