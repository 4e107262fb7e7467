"""No litter, no loss: kill -9 at every step of building and swapping a folder, then run again.

The killed process is a fork of the test running only file operations
(``files.staging_folder`` and ``files.swap_folder``, as ``export --format
compact`` calls them), killed with SIGKILL just before its k-th file system
call, for every k until one run gets through.
"""

import glob
import os
import shutil
import signal

import pytest

from poetry_rnn.evaluation import report as report_lib
from poetry_rnn.serving import savedmodel
from poetry_rnn.infra import files
from poetry_rnn.model import store
from poetry_rnn.infra.errors import PoetryError


def snapshot(folder):
    """{name: bytes} of the files in ``folder`` (None if it is missing)."""
    if not os.path.isdir(folder):
        return None
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))}


def litter(out):
    """Temporary files and folders beside ``out`` (``.NAME.*.tmp``)."""
    return glob.glob(os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.*.tmp"))


@pytest.fixture
def exported(tiny_model_dir, tmp_path):
    """``out``: a compact export with a model card; ``new``: the files a second export would put there."""
    out = str(tmp_path / "shipped" / "model")
    savedmodel.export_compact(tiny_model_dir, out)
    with open(os.path.join(out, "README.md"), "w") as handle:
        handle.write("the model card\n")
    new = str(tmp_path / "new")
    shutil.copytree(out, new)
    with open(os.path.join(new, "VERSION"), "w") as handle:
        handle.write("new\n")
    return out, new


FILE_CALLS = [(os, "replace"), (os, "rename"), (os, "unlink"), (os, "rmdir"), (os, "mkdir"), (shutil, "copy2")]


def swap_killed_at(step, new, out):
    """In a forked child: build ``new``'s files in a staging folder, swap it in; SIGKILL before file call ``step``.

    Returns True if the child was killed, False if it finished.
    """
    child = os.fork()
    if child == 0:  # the child: file operations only, then _exit (no pytest, no TensorFlow)
        try:
            calls = [0]
            for module, name in FILE_CALLS:
                def counted(*args, _real=getattr(module, name), **kwargs):
                    calls[0] += 1
                    if calls[0] == step:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return _real(*args, **kwargs)
                setattr(module, name, counted)
            with files.staging_folder(out) as staging:
                for name in os.listdir(new):
                    shutil.copy2(os.path.join(new, name), staging)
                files.swap_folder(staging, out)
        finally:
            os._exit(0)
    _, status = os.waitpid(child, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def test_kill_9_at_every_step_of_the_swap_loses_nothing_and_leaves_nothing(exported, tiny_model_dir):
    out, new = exported
    old = snapshot(out)
    pristine = str(out) + ".pristine"
    shutil.copytree(out, pristine)
    step, outcomes = 1, set()
    while swap_killed_at(step, new, out):
        # At every moment one whole folder exists: the old one at out or out.old, or the new one at out.
        there = snapshot(out) if os.path.isdir(out) else snapshot(files.old_copy(out))
        assert there in (old, snapshot(new)), f"kill before file call {step}: a mixed or half folder"
        files.finish_interrupted_swap(out)  # what the next export does first
        now = snapshot(out)
        assert now in (old, snapshot(new)) and not os.path.exists(files.old_copy(out)), step
        outcomes.add("old" if now == old else "new")
        # The next export starts from there, clears the litter and keeps the card.
        savedmodel.export_compact(tiny_model_dir, out)
        assert litter(out) == [] and not os.path.exists(files.old_copy(out))
        assert open(os.path.join(out, "README.md")).read() == "the model card\n"
        store.load(out)
        shutil.rmtree(out)
        shutil.copytree(pristine, out)
        step += 1
    print(f"killed before each of {step - 1} file calls")
    assert step > 5 and outcomes == {"old", "new"}  # kills landed before and after the new folder went in
    assert snapshot(out) == snapshot(new) and litter(out) == []


def test_a_stale_old_folder_never_crashes_the_next_export(exported, tiny_model_dir):
    out, _ = exported
    stale = files.old_copy(out)
    shutil.copytree(out, stale)  # a kill between the swap and the clean-up
    savedmodel.export_compact(tiny_model_dir, out)
    assert not os.path.exists(stale) and store.load(out)


def test_an_old_folder_without_the_new_one_is_restored_not_deleted(exported, tmp_path):
    out, _ = exported
    os.replace(out, files.old_copy(out))  # a kill between the two renames
    with pytest.raises(PoetryError):
        savedmodel.export_compact(str(tmp_path / "no-such-model"), out)  # even an export that fails
    assert open(os.path.join(out, "README.md")).read() == "the model card\n"
    assert not os.path.exists(files.old_copy(out))


def test_a_live_runs_temporary_files_are_kept_and_dead_ones_removed(tmp_path):
    target = str(tmp_path / "poems.txt")
    dead = tmp_path / ".poems.txt.abc123.tmp"
    dead.write_text("half a file")
    dead_folder = tmp_path / ".poems.txt.def456.tmp"
    dead_folder.mkdir()
    (dead_folder / "part").write_text("x")
    with files.atomic_write(target) as handle:  # a live write: its own temporary file is held
        handle.write("written\n")
        assert not dead.exists() and not dead_folder.exists()  # nobody held them: removed at the start
        assert len(litter(target)) == 1 and files.remove_leftovers(target) == []  # this write's own stays
    assert open(target).read() == "written\n" and litter(target) == []


def test_an_interrupted_savedmodel_export_leaves_no_half_version(tiny_model_dir, tmp_path):
    out = str(tmp_path / "serving" / "poet" / "1")
    os.makedirs(os.path.dirname(out))
    stale = os.path.join(os.path.dirname(out), ".1.xyz.tmp")
    os.makedirs(os.path.join(stale, "variables"))  # what a killed export left
    savedmodel.export(tiny_model_dir, out)
    assert sorted(os.listdir(os.path.dirname(out))) == ["1"]
    assert os.path.exists(os.path.join(out, "saved_model.pb"))


def test_evaluate_out_clears_what_an_interrupted_run_left(tiny_model_dir, tmp_path):
    from conftest import synthetic_poems, write_poems

    report = report_lib.evaluate(tiny_model_dir, data=write_poems(tmp_path / "poems.txt", synthetic_poems(30)))
    out = tmp_path / "eval"
    out.mkdir()
    (out / ".report.json.k1ll3d.tmp").write_text("{")  # what kill -9 during the writes left
    (out / ".report.md.k1ll3d.tmp").write_text("#")
    report_lib.write_report(report, str(out))
    assert sorted(os.listdir(out)) == ["report.json", "report.md"]


def test_prepare_clears_what_an_interrupted_run_left(tmp_path):
    from poetry_rnn.corpus import prepare
    from test_prepare import QIJUE, entry, write_json

    write_json(tmp_path / "tang", 0, [entry("题", QIJUE)])
    out = tmp_path / "data" / "poems.txt"
    out.parent.mkdir()
    (out.parent / ".poems.txt.k1ll3d.tmp").write_text("half a corpus")  # a kill -9 during the write
    prepare.prepare_poems(str(tmp_path / "tang"), str(out))
    assert sorted(os.listdir(out.parent)) == ["poems.txt"]
