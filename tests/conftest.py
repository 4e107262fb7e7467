"""Shared fixtures: synthetic poems and a tiny trained model, made by the tests.

The synthetic corpus is random characters in real shapes (五绝/七绝 lines,
，。 alternating); it exercises the mechanics, not poetry. The tiny model is
trained once per test session and shared, because training is the slow part.
"""

import os
import random
import subprocess
import sys
import tempfile

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The package's cache (prosody tables, downloads) goes to a folder of this run, never the user's.
os.environ["POETRY_RNN_CACHE"] = tempfile.mkdtemp(prefix="poetry_rnn_cache_")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_CORPUS = os.environ.get("POETRY_RNN_CORPUS", os.path.join(REPO, "..", "shared", "corpus"))
# Common Han characters with known readings, so rhyme and tone masks have material.
CHARS = "春花秋月何时了往事知多少小楼昨夜又东风故国不堪回首明中山水天云日红江南北人家年前烟霞来归去长空清白青寒高飞落叶声门外"


def synthetic_poems(count, seed=0):
    """Poems as (title, content) with 5- or 7-character lines."""
    rng = random.Random(seed)
    poems = []
    for i in range(count):
        n, lines = rng.choice([5, 7]), rng.choice([4, 8])
        body = "".join("".join(rng.choice(CHARS) for _ in range(n)) + ("，" if j % 2 == 0 else "。") for j in range(lines))
        poems.append((f"题{i}", body))
    return poems


def write_poems(path, poems):
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(f"{title}:{content}\n" for title, content in poems)
    return str(path)


@pytest.fixture
def poems_file(tmp_path):
    return write_poems(tmp_path / "poems.txt", synthetic_poems(200))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A small LSTM trained for a few epochs on synthetic poems (shared, read-only)."""
    from poetry_rnn.training import trainer

    folder = tmp_path_factory.mktemp("tiny")
    data = write_poems(folder / "poems.txt", synthetic_poems(400))
    options = trainer.TrainOptions.of(units=32, embed_dim=16, layers=2, epochs=3, batch_size=32, samples=0, quiet=True)
    trainer.fit(data, str(folder / "model"), options)
    return str(folder / "model")


def run_module(module, *args, cwd=None, timeout=300):
    """Run ``python -m poetry_rnn.<module> args``; return the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", f"poetry_rnn.{module}", *args],
        capture_output=True, text=True, cwd=cwd or REPO, env=env, timeout=timeout,
    )


TIERS = ("unit", "integration", "system")


def pytest_collection_modifyitems(items):
    """Each test gets its folder's tier as a marker: ``pytest -m unit`` runs the fast tier alone."""
    for item in items:
        tier = os.path.basename(os.path.dirname(str(item.fspath)))
        if tier in TIERS:
            item.add_marker(tier)
