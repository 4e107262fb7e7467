"""Bad input never costs data: one line on stderr, exit status 2, nothing overwritten.

Most checks call the functions that raise PoetryError in-process (cli.run
turns any PoetryError into ``error: <message>`` and exit 2, see test_cli);
a few run the real command lines to check the whole path, including that
``--out`` and an existing model directory are left as they were.
"""

import errno
import json
import math
import os
import resource
import shutil
import signal
import time

import numpy as np
import pytest

from poetry_rnn.generation import constraints
from poetry_rnn.corpus import reading
from poetry_rnn import poet
from poetry_rnn.evaluation import report as report_lib
from poetry_rnn.infra import files
from poetry_rnn.model import store
from poetry_rnn.verse import poem_request
from poetry_rnn.training import trainer
from poetry_rnn.infra.errors import PoetryError
from poetry_rnn.model.vocab import Vocab
from conftest import run_module, synthetic_poems, write_poems

TINY = dict(units=16, embed_dim=8, layers=1, batch_size=16, samples=0, quiet=True)


def snapshot(folder):
    """{relative path: bytes} of every file under ``folder``."""
    out = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, folder)] = handle.read()
    return out


def assert_one_line_error(result, *words):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model dir with two checkpoints (ckpt-2, ckpt-4), and its data."""
    folder = tmp_path_factory.mktemp("bad_input")
    data = write_poems(folder / "poems.txt", synthetic_poems(120))
    trainer.fit(data, str(folder / "model"), trainer.TrainOptions.of(epochs=1, max_steps=4, checkpoint_every=2, **TINY))
    return data, str(folder / "model")


@pytest.fixture
def model_copy(trained, tmp_path):
    path = str(tmp_path / "model")
    shutil.copytree(trained[1], path)
    return path


# --------------------------------------------------------------------------
# The poems file


def parent_is_a_file(path):
    path.write_text("a:春眠不觉晓。\n", encoding="utf-8")
    return path / "poems.txt"


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: p.mkdir(), ["expected a file, got a folder"]),
        (parent_is_a_file, ["cannot read", "Not a directory"]),
        (lambda p: p.write_text("春眠不觉晓\nno colon\n:\ntitle:   \n", encoding="utf-8"), ["no usable poems", "2 empty content", "2 no colon"]),
        (lambda p: p.write_bytes("题:春眠不觉晓。\n".encode("utf-16")), ["poems.txt:1: not valid UTF-8"]),
        (lambda p: p.write_bytes("a:春眠不觉晓。\rb:处处闻啼鸟。\r".encode()), ["no usable poems", "1 line break inside the line"]),
    ],
    ids=["folder", "parent-is-a-file", "only-bad-lines", "utf-16", "cr-only-line-ends"],
)
def test_unreadable_poems_files_are_one_line_errors(tmp_path, make, words):
    path = tmp_path / "poems.txt"
    made = make(path)
    path = made if isinstance(made, os.PathLike) else path
    with pytest.raises(PoetryError) as error:
        reading.read_poems(path)
    assert "\n" not in str(error.value) and all(w in str(error.value) for w in words), str(error.value)


def test_bad_lines_are_skipped_counted_and_training_goes_on(tmp_path, capsys):
    good = "".join(f"{t}:{c}\n" for t, c in synthetic_poems(40))
    bad = "no colon here\n题:\n题:春:眠\n题:" + "字" * 300 + "\n\ufeff\n   \n"
    data = tmp_path / "poems.txt"
    data.write_text(bad + good + bad, encoding="utf-8")
    history = trainer.fit(str(data), str(tmp_path / "m"), trainer.TrainOptions.of(epochs=1, max_steps=1, **{**TINY, "quiet": False}))
    assert history.step == 1
    summary = capsys.readouterr().err.splitlines()[0]
    assert "kept 40 poems" in summary
    assert "2 colon in content, 2 content over 200 characters, 2 empty content, 2 no colon" in summary


def test_a_10_mb_line_is_skipped_quickly(tmp_path):
    path = tmp_path / "poems.txt"
    huge = "字" * (10 * 2**20 // 3)
    path.write_text(f"题:{huge}\n{huge}\n题:{huge}：{huge}\na:春眠不觉晓。\n", encoding="utf-8")  # ~40 MB, 3 huge lines
    start = time.perf_counter()
    poems, stats = reading.read_poems(path)
    assert time.perf_counter() - start < 5  # about 0.1 s: one line in memory at a time, no quadratic work
    assert [p.content for p in poems] == ["春眠不觉晓。"]
    assert stats.skipped == {"content over 200 characters": 1, "no colon": 1, "colon in content": 1}


def test_only_punctuation_trains_but_cannot_fill_a_form(tmp_path):
    # Decision: a poem of only punctuation is a valid (if useless) line; the
    # reader keeps it, training runs, and a regular form is refused by plan.
    assert reading.parse_line("题:，。？！")[0].content == "，。？！"
    data = write_poems(tmp_path / "poems.txt", [("题", "，。？！")] * 30)
    trainer.fit(data, str(tmp_path / "m"), trainer.TrainOptions.of(epochs=1, max_steps=1, **TINY))
    loaded = store.load(str(tmp_path / "m"))
    assert set(loaded.vocab.chars) == set("，。？！")
    with pytest.raises(PoetryError, match="no token of the vocabulary can stand at line 1, character 1"):
        constraints.plan([poem_request.PoemRequest(form="wujue")], loaded.vocab)


# --------------------------------------------------------------------------
# The model directory


def test_another_vocabulary_is_refused_naming_both_and_nothing_changes(trained, model_copy, tmp_path):
    before = snapshot(model_copy)
    other = write_poems(tmp_path / "other.txt", [("t", "天地玄黄宇宙洪荒，日月盈昃辰宿列张。")] * 5)
    with pytest.raises(PoetryError) as error:
        trainer.fit(other, model_copy, trainer.TrainOptions.of(epochs=2, **TINY))
    saved = Vocab.load(os.path.join(model_copy, "vocab.txt"))
    message = str(error.value)
    assert "different vocabulary" in message and saved.fingerprint in message and f"({len(saved)} tokens" in message
    assert message.count("fingerprint") == 2
    assert snapshot(model_copy) == before


def truncate(path, keep=0.5):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: int(len(data) * keep)])


def garble(path):
    data = bytearray(open(path, "rb").read())
    for i in range(0, len(data), 7):
        data[i] ^= 0x5A
    open(path, "wb").write(bytes(data))


def edit_config(change):
    def apply(model_dir):
        path = os.path.join(model_dir, "config.json")
        data = json.load(open(path))
        change(data)
        json.dump(data, open(path, "w"))

    return apply


CKPT = "ckpt/ckpt-4"
DAMAGE = {
    "data-truncated": (lambda d: truncate(f"{d}/{CKPT}.data-00000-of-00001"), "cannot read checkpoint .*ckpt-4: Read less bytes"),
    "data-empty": (lambda d: truncate(f"{d}/{CKPT}.data-00000-of-00001", 0), "cannot read checkpoint .*ckpt-4"),
    "data-garbled": (lambda d: garble(f"{d}/{CKPT}.data-00000-of-00001"), "cannot read checkpoint .*ckpt-4: .*checksum"),
    "data-missing": (lambda d: os.unlink(f"{d}/{CKPT}.data-00000-of-00001"), "cannot read checkpoint .*ckpt-4: No such file"),
    "index-truncated": (lambda d: truncate(f"{d}/{CKPT}.index"), "cannot read checkpoint .*ckpt-4"),
    "index-missing": (lambda d: os.unlink(f"{d}/{CKPT}.index"), "checkpoint is damaged or names a checkpoint that is gone .*ckpt-2"),
    "state-garbled": (lambda d: open(f"{d}/ckpt/checkpoint", "w").write("}{ garbage"), "checkpoint is damaged .*holds ckpt-2, ckpt-4"),
    "state-empty": (lambda d: open(f"{d}/ckpt/checkpoint", "w").close(), "checkpoint is damaged .*holds ckpt-2, ckpt-4"),
    "config-truncated": (lambda d: truncate(f"{d}/config.json"), "config.json is not valid JSON"),
    "config-a-list": (lambda d: open(f"{d}/config.json", "w").write("[1, 2]"), "config.json is not a config object"),
    "config-unknown-field": (edit_config(lambda c: c.update(extra=1)), "config.json: unknown fields extra"),
    "config-unknown-model-field": (edit_config(lambda c: c["model"].update(heads=4)), "unknown model fields heads"),
    "config-newer-version": (edit_config(lambda c: c.update(format_version=99)), "format version 99; .*upgrade"),
    "config-no-version": (edit_config(lambda c: c.pop("format_version")), "no valid format_version"),
    "config-units-not-int": (edit_config(lambda c: c["model"].update(units=1.5)), "config.json: units must be a whole number >= 1, got 1.5"),
    "config-model-null": (edit_config(lambda c: c.update(model=None)), "'model' must be an object"),
    "config-train-a-string": (edit_config(lambda c: c.update(train="fast")), "'train' must be an object"),
    "config-bad-cell": (edit_config(lambda c: c["model"].update(cell="transformer")), "config.json: cell must be one of rnn, lstm, gru, got 'transformer'"),
    "config-units-a-billion": (edit_config(lambda c: c["model"].update(units=10**9)),
                               r"config.json: a 1x1000000000 lstm .* would have [\d,]+ parameters, more than the 1,000,000,000"),
    "config-units-20000": (edit_config(lambda c: c["model"].update(units=20000)), "would have 1,6[\\d,]+ parameters"),
    "vocab-changed": (lambda d: open(f"{d}/vocab.txt", "a").write("新\n"), "vocab.txt does not match config.json"),
    "vocab-truncated": (lambda d: truncate(f"{d}/vocab.txt", 0.5), "vocabulary file"),
    "vocab-missing": (lambda d: os.unlink(f"{d}/vocab.txt"), "vocabulary file not found"),
    "config-missing": (lambda d: os.unlink(f"{d}/config.json"), "is not a model directory"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_model_dir_is_a_one_line_error(model_copy, damage):
    make, pattern = DAMAGE[damage]
    make(model_copy)
    with pytest.raises(PoetryError, match=pattern) as error:
        store.load(model_copy)
    assert "\n" not in str(error.value)


def weights_only(model_dir):
    """Turn a model dir into a shipped one: weights.npz instead of checkpoints."""
    loaded = store.load(model_dir)
    shutil.rmtree(store.checkpoint_dir(model_dir))
    store.save_weights(loaded.model, os.path.join(model_dir, "weights.npz"))
    return loaded


def rewrite_npz(path, change):
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    change(arrays)
    os.unlink(path)
    np.savez(path, **arrays)


WEIGHT_DAMAGE = {
    "truncated": (lambda p: truncate(p), "cannot read weights .*weights.npz"),
    "empty": (lambda p: truncate(p, 0), "cannot read weights"),
    "garbled": (garble, "cannot read weights .*weights.npz"),
    "a-folder": (lambda p: (os.unlink(p), os.mkdir(p)), "cannot read weights .*Is a directory"),
    "nan": (lambda p: rewrite_npz(p, lambda a: a.update({k: v * np.nan for k, v in a.items()})), "NaN or infinite"),
    "missing-variable": (lambda p: rewrite_npz(p, lambda a: a.pop(sorted(a)[0])), "do not fit this model"),
    "wrong-shape": (lambda p: rewrite_npz(p, lambda a: a.update({k: v[:1] for k, v in a.items()})), "do not fit this model"),
    "foreign-names": (lambda p: (os.unlink(p), np.savez(p, w=np.zeros(3))), "do not fit this model"),
    "an-extra-array": (lambda p: rewrite_npz(p, lambda a: a.update(extra=np.zeros(3))), "'extra' is none of its variables"),
    "not-numbers": (lambda p: rewrite_npz(p, lambda a: a.update({k: v.astype(object) for k, v in a.items()})),
                    "holds object"),
    "header-promises-6-gb": (lambda p: promise_more(p, (40000, 40000)),
                             r"embedding/embeddings: the file holds float32 \(40000, 40000\), config.json needs \(\d+, 8\)"),
}


def promise_more(path, shape):
    """Give the embedding's .npy member a header that promises a ``shape`` float32 array (its data stays short)."""
    import io
    import zipfile

    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    os.unlink(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            if name.endswith("embedding/embeddings"):
                np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
                buffer.write(bytes(1024))
            else:
                np.lib.format.write_array(buffer, array)
            archive.writestr(name + ".npy", buffer.getvalue())


@pytest.mark.parametrize("damage", list(WEIGHT_DAMAGE))
def test_damaged_weights_npz_is_a_one_line_error(model_copy, damage):
    weights_only(model_copy)
    path = os.path.join(model_copy, "weights.npz")
    store.load(model_copy)  # intact: loads
    make, pattern = WEIGHT_DAMAGE[damage]
    make(path)
    with pytest.raises(PoetryError, match=pattern) as error:
        store.load(model_copy)
    assert "\n" not in str(error.value) and "allow_pickle" not in str(error.value)


@pytest.mark.parametrize("damage", ["config-units-a-billion", "config-units-20000", "header-promises-6-gb", "wrong-shape"])
def test_sizes_are_checked_before_any_model_is_built(model_copy, monkeypatch, damage):
    weights_only(model_copy)
    make, pattern = {**DAMAGE, **WEIGHT_DAMAGE}[damage]
    make(os.path.join(model_copy, "weights.npz") if damage in WEIGHT_DAMAGE else model_copy)

    def refuse_to_build(config):
        raise AssertionError(f"a model was built for {config}")

    monkeypatch.setattr(store, "PoetryModel", refuse_to_build)
    start = time.perf_counter()
    with pytest.raises(PoetryError, match=pattern):
        store.load(model_copy)
    assert time.perf_counter() - start < 1


# --------------------------------------------------------------------------
# Requests to write


@pytest.mark.parametrize(
    "options, words",
    [
        (dict(temperature=-0.5), "--temperature must be a finite number >= 0, got -0.5"),
        (dict(temperature=float("nan")), "--temperature must be a finite number >= 0, got nan"),
        (dict(temperature=float("inf")), "--temperature must be a finite number >= 0, got inf"),
        (dict(top_p=0.0), "--top_p must be a finite number in (0, 1], got 0.0"),
        (dict(top_p=1.5), "--top_p must be a finite number in (0, 1]"),
        (dict(top_p=float("nan")), "--top_p must be a finite number in (0, 1], got nan"),
        (dict(top_k=-1), "--top_k must be a whole number in [0, 1000000], got -1"),
        (dict(top_k=2**31), "--top_k must be a whole number in [0, 1000000], got 2147483648"),  # found by the fuzz test
        (dict(num=0), "--num must be a whole number in [1, 10000], got 0"),
        (dict(best_of=0), "--best_of must be a whole number in [1, 64], got 0"),
        (dict(seed=-1), "--seed must be a whole number in [0, 2147483647], got -1"),
        (dict(max_len=0), "--max_len must be a whole number in [1, 1000], got 0"),
        (dict(form="sonnet"), "--form must be one of free, wujue, qijue, wulv, qilv, got 'sonnet'"),
        (dict(begin=["日"] * 3, num=5000), "at most 10000 poems in one ask, got 15000"),
        (dict(colour="red"), "unknown option 'colour'"),
    ],
)
def test_write_options_out_of_range(options, words):
    with pytest.raises(PoetryError) as error:
        poet.make_ask(**options)
    assert words in str(error.value)
    poet.make_ask(temperature=0.0, top_p=1.0, num=1, best_of=1, seed=0)  # the edges are fine


@pytest.mark.parametrize(
    "request_, pattern",
    [
        (dict(form="sonnet"), "unknown form 'sonnet'"),
        (dict(form="wujue", template="春风????，?????。"), "template does not have the shape of 五绝"),
        (dict(form="qijue", template="?????，?????。?????，?????。"), "template does not have the shape of 七绝"),
        (dict(form="wujue", acrostic="龘春"), "acrostic character '龘' is not in the model's vocabulary"),
        (dict(form="wujue", acrostic="春夏秋冬雪"), "more characters than 五绝"),
        (dict(form="wujue", acrostic="ab"), "must be Han characters"),
        (dict(template="春风a??"), "template character 'a'"),
    ],
)
def test_impossible_requests_are_refused(trained, request_, pattern):
    vocab = store.load(trained[1]).vocab
    with pytest.raises(PoetryError, match=pattern):
        constraints.plan([poem_request.PoemRequest(**request_)], vocab)


# --------------------------------------------------------------------------
# Files that cannot be written


class FileSizeLimit:
    """RLIMIT_FSIZE: writes past ``size`` bytes fail with EFBIG, as on a full disk (root included)."""

    def __init__(self, size):
        self.size = size

    def __enter__(self):
        self.limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        self.handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills us
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.size, self.limits[1]))

    def __exit__(self, *exc):
        resource.setrlimit(resource.RLIMIT_FSIZE, self.limits)
        signal.signal(signal.SIGXFSZ, self.handler)


def test_atomic_write_on_a_full_disk_keeps_the_old_file(tmp_path):
    target = tmp_path / "poems.txt"
    target.write_text("old\n")
    with FileSizeLimit(64 * 1024), pytest.raises(PoetryError, match="cannot write .*poems.txt: File too large"):
        files.write_text(target, "字" * 100_000)
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["poems.txt"]


def test_atomic_write_errors_are_one_line_and_modes_are_normal(tmp_path, monkeypatch):
    (tmp_path / "folder").mkdir()
    with pytest.raises(PoetryError, match="cannot write .*folder: Is a directory"):
        files.write_text(tmp_path / "folder", "x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(PoetryError, match="cannot write .*file/out.txt"):
        files.write_text(tmp_path / "file" / "out.txt", "x")
    # ENOSPC from fsync (what a full disk gives) is one line too.
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(PoetryError, match="No space left on device"):
        files.write_text(tmp_path / "new.txt", "x")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["file", "folder"]
    # mkstemp's private 0600 is not what a user expects of poems.txt or config.json.
    files.write_text(tmp_path / "new.txt", "x")
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(tmp_path / "new.txt").st_mode & 0o777 == 0o666 & ~umask
    os.chmod(tmp_path / "new.txt", 0o640)
    files.write_text(tmp_path / "new.txt", "y")
    assert os.stat(tmp_path / "new.txt").st_mode & 0o777 == 0o640


# --------------------------------------------------------------------------
# The command lines


def test_write_with_bad_arguments_leaves_out_untouched(trained, model_copy, tmp_path):
    out = tmp_path / "existing.txt"
    out.write_text("a poem I want to keep\n", encoding="utf-8")
    result = run_module("write", "--model_dir", trained[1], "--form", "sonnet", "--out", str(out))
    assert_one_line_error(result, "--form")
    truncate(os.path.join(model_copy, CKPT + ".data-00000-of-00001"))
    result = run_module("write", "--model_dir", model_copy, "--begin", "春", "--out", str(out))
    assert_one_line_error(result, "cannot read checkpoint", "ckpt-4")
    assert out.read_text(encoding="utf-8") == "a poem I want to keep\n"
    assert sorted(os.listdir(tmp_path)) == ["existing.txt", "model"]


def test_train_on_a_bad_file_leaves_the_model_dir_untouched(model_copy, tmp_path):
    before = snapshot(model_copy)
    data = tmp_path / "poems.txt"
    data.write_bytes("a:春眠不觉晓。\n".encode() * 3 + "b:处处闻啼鸟。\n".encode("gbk"))
    result = run_module("train", "--data", str(data), "--model_dir", model_copy, "--units", "16", "--embed_dim", "8", "--layers", "1")
    assert_one_line_error(result, "poems.txt:4: not valid UTF-8")
    assert snapshot(model_copy) == before


# --------------------------------------------------------------------------
# Settings checked by meaning, once, where the options are made (issue 15's table)


@pytest.mark.parametrize(
    "setting, message",
    [
        (dict(checkpoint_every=0), "--checkpoint_every must be a whole number >= 1, got 0"),  # was a ZeroDivisionError
        (dict(units=0), "--units must be a whole number >= 1, got 0"),  # was a dump of ModelConfig(...)
        (dict(layers=0), "--layers must be a whole number >= 1, got 0"),
        (dict(dropout=1.5), "--dropout must be a finite number in [0, 1), got 1.5"),
        (dict(keep_checkpoints=0), "--keep_checkpoints must be a whole number >= 1, got 0"),  # was a ValueError
        (dict(clip_norm=float("nan")), "--clip_norm must be a finite number >= 0, got nan"),  # was accepted
        (dict(learning_rate=float("nan")), "--learning_rate must be a finite number > 0, got nan"),  # failed at step 2
        (dict(learning_rate=float("inf")), "--learning_rate must be a finite number > 0, got inf"),
        (dict(valid_fraction=1.0), "--valid_fraction must be a finite number in [0, 1), got 1.0"),
        (dict(optimizer="adagrad"), "--optimizer must be one of adam, rmsprop, sgd, got 'adagrad'"),
        (dict(seed=-1), "--seed must be a whole number >= 0, got -1"),
    ],
)
def test_train_settings_out_of_range_name_the_flag(setting, message):
    with pytest.raises(PoetryError) as error:
        trainer.TrainOptions.of(**setting)
    assert str(error.value) == message


@pytest.mark.parametrize(
    "module, args, message",
    [
        ("train", ["--checkpoint_every", "0"], "--checkpoint_every must be a whole number >= 1, got 0"),
        ("evaluate", ["--data", "x.txt", "--temperature", "nan"], "--temperature must be a finite number >= 0, got nan"),
        ("evaluate", ["--data", "x.txt", "--temperature", "-1"], "--temperature must be a finite number >= 0, got -1.0"),
        ("compare", ["--temperature", "-1"], "--temperature must be a finite number >= 0, got -1.0"),
        ("compare", ["--temperature", "nan"], "--temperature must be a finite number >= 0, got nan"),
        ("evaluate", ["--data", "x.txt", "--samples", "-1"], "--samples=-1: -1 is not a non-negative integer"),
        ("compare", ["--units", "0"], "--units must be a whole number >= 1, got 0"),
    ],
)
def test_bad_settings_are_refused_before_any_work(tmp_path, module, args, message):
    result = run_module(module, *args, cwd=str(tmp_path))
    assert_one_line_error(result, message)
    assert os.listdir(tmp_path) == []  # nothing read, nothing written


def test_reports_are_strict_json_even_when_a_measure_is_nan(tiny_model_dir, tmp_path):
    report = report_lib.evaluate(tiny_model_dir, data=write_poems(tmp_path / "poems.txt", synthetic_poems(10)))
    report["perplexity"]["perplexity"] = math.inf  # a model that gives a real character probability 0
    report["rhyme_rate"] = [math.nan, 0.5]  # a rate over no poems
    report_lib.write_report(report, str(tmp_path / "eval"))

    def refuse(constant):
        raise AssertionError(f"{constant} in report.json")

    saved = json.loads((tmp_path / "eval" / "report.json").read_text(), parse_constant=refuse)
    assert saved["perplexity"]["perplexity"] is None and saved["rhyme_rate"] == [None, 0.5]
    assert saved["perplexity"]["poems"] == len(reading.read_poems(tmp_path / "poems.txt")[0])
