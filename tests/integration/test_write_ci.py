"""Ci written by a model in the graph: the 20 commonest tunes, their faces, and the ci companion of a model directory."""

import json
import os
import shutil

import pytest
from conftest import REPO, run_module

from poetry_rnn import poet as poet_lib
from poetry_rnn.corpus import reading
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model import store
from poetry_rnn.training import trainer
from poetry_rnn.verse import cipai, poem_request, validator

TUNES = list(cipai.read_table())[:20]


@pytest.fixture(scope="module")
def tiny_ci_model_dir(tmp_path_factory):
    """A small LSTM that read 1,500 real ci (tune as title), so its vocabulary holds the tunes' rhymes."""
    folder = tmp_path_factory.mktemp("tiny_ci")
    poems, _ = reading.read_poems(os.path.join(REPO, "data", "ci.txt"))
    data = folder / "ci.txt"
    data.write_text("".join(f"{p.title}:{p.content}\n" for p in poems[:1500]), encoding="utf-8")
    options = trainer.TrainOptions.of(units=32, embed_dim=16, layers=1, epochs=1, batch_size=32, samples=0,
                                      condition="keywords", prompt_bag=True, quiet=True)
    trainer.fit(str(data), str(folder / "model"), options)
    return str(folder / "model")


@pytest.mark.parametrize("tones, book", [("strict", "cilin"), ("off", "xinyun")])
def test_every_common_tune_is_written_to_its_shape_rhymes_and_tones(tiny_ci_model_dir, tones, book):
    poet = poet_lib.load(tiny_ci_model_dir)
    asks = [poet_lib.make_ask(cipai=tune, tones=tones, ci_rhyme=book, num=2, best_of=2, seed=7) for tune in TUNES]
    for tune, ask, written in zip(TUNES, asks, poet.write_asks(asks)):
        for ci, request in zip(written, poet_lib.poem_requests(ask.poem, ask.sampling.seed)):
            assert ci.title == tune and ci.cipai == tune
            assert validator.check_poem(ci.text, request) == [], ci.text
            assert len(ci.rhyme_group.split()) == len(cipai.lookup(tune).rhyme_sets())
            if book == "cilin":  # the tune table's own judge agrees
                judged = cipai.check(cipai.lookup(tune), ci.text)
                assert judged.shape_ok and judged.rhymes_ok and judged.tones_ok


def test_a_model_directory_s_ci_companion_writes_its_ci(tiny_model_dir, tiny_ci_model_dir, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_model_dir, bundle)
    shutil.copytree(tiny_ci_model_dir, bundle / store.CI_COMPANION)
    poet = poet_lib.load(str(bundle))
    ci_ask = poet_lib.make_ask(cipai="如梦令", num=2, seed=3)
    poem_ask = poet_lib.make_ask(form="wujue", rhyme=True, num=2, seed=3)
    assert poet.poet_for(poem_ask) is poet
    assert poet.poet_for(ci_ask).path == str(bundle / store.CI_COMPANION)
    both = poet.write_asks([ci_ask, poem_ask])  # one call, two models
    alone = poet_lib.load(tiny_ci_model_dir).write_asks([ci_ask])[0]
    assert [p.text for p in both[0]] == [p.text for p in alone]
    assert [p.text for p in both[1]] == [p.text for p in poet_lib.load(tiny_model_dir).write_asks([poem_ask])[0]]


def test_warming_up_loads_the_ci_companion_before_any_ci_is_asked_for(tiny_model_dir, tiny_ci_model_dir, tmp_path):
    # The server warms up before it listens: a first ci request must not load a model while others wait.
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_model_dir, bundle)
    shutil.copytree(tiny_ci_model_dir, bundle / store.CI_COMPANION)
    poet = poet_lib.load(str(bundle))
    assert poet._ci_poet is None
    poet.warm_up()
    assert poet._ci_poet is not None and poet._ci_poet.path == str(bundle / store.CI_COMPANION)


def test_the_command_line_lists_tunes_and_names_close_ones(tiny_ci_model_dir):
    listed = run_module("write", "--cipai", "list")
    assert listed.returncode == 0 and listed.stdout.splitlines()[0].startswith("浣溪沙\t6 lines, 42 characters")
    assert len(listed.stdout.splitlines()) == len(cipai.read_table())
    unknown = run_module("write", "--model_dir", tiny_ci_model_dir, "--cipai", "西江")
    assert unknown.returncode == 2 and "--cipai '西江' is not a tune the table knows (close: 西江月" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
    written = run_module("write", "--model_dir", tiny_ci_model_dir, "--cipai", "浣溪沙", "--tones", "--format",
                         "jsonl", "--seed", "1")
    assert written.returncode == 0, written.stderr
    ci = json.loads(written.stdout)
    request = poem_request.PoemRequest(cipai="浣溪沙", tones="loose")
    assert ci["cipai"] == "浣溪沙" and validator.check_poem(ci["text"], request) == []


def test_python_errors_name_the_keyword(tiny_ci_model_dir):
    poet = poet_lib.load(tiny_ci_model_dir)
    with pytest.raises(PoetryError, match=r"^keyword argument 'cipai' '临江' is not a tune"):
        poet.write(cipai="临江")
    with pytest.raises(PoetryError, match="leave out form"):
        poet.write(cipai="临江仙", form="qijue")
