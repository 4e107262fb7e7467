"""Installing: a built wheel carries the shipped model and works from any folder; a light import."""

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from conftest import REPO, run_module


def test_import_poetry_rnn_loads_no_tensorflow():
    code = ("import sys, poetry_rnn, poetry_rnn.verse.prosody, poetry_rnn.corpus.reading, poetry_rnn.options, poetry_rnn.verse.forms; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


def test_import_poetry_rnn_changes_nothing_in_the_process():
    """A program that embeds the package keeps its environment and import hooks: only entry points quiet TensorFlow."""
    code = ("import os, sys; env, hooks = dict(os.environ), list(sys.meta_path); import poetry_rnn; "
            "print(dict(os.environ) == env, list(sys.meta_path) == hooks, 'TF_CPP_MIN_LOG_LEVEL' in os.environ)")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, check=True)
    assert out.stdout.split() == ["True", "True", "False"]


def test_tensorflow_notices_stay_off_the_terminal_but_errors_do_not(tiny_model_dir):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = REPO
    ok = subprocess.run([sys.executable, "-m", "poetry_rnn.write", "--model_dir", tiny_model_dir, "--seed", "1"],
                        capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
    # the entry points' filter (infra.quiet) is on while TensorFlow loads, yet a crash still reaches the terminal
    crash = subprocess.run([sys.executable, "-c", "from poetry_rnn.infra import quiet; quiet.install(); "
                            "import tensorflow, os; os.write(2, b'real crash\\n'); os.abort()"],
                           capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert "real crash" in crash.stderr and crash.returncode != 0


def test_help_exits_zero_and_shows_space_separated_lists():
    result = run_module("write", "--help")
    assert result.returncode == 0
    assert "--begin 日 红 山" in result.stdout and "space-separated values" in result.stdout


def test_wheel_installs_and_writes_from_any_folder(tmp_path):
    pytest.importorskip("build")
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.py", "README.md"):
        shutil.copy(os.path.join(REPO, name), source)
    shutil.copytree(os.path.join(REPO, "poetry_rnn"), source / "poetry_rnn",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(REPO, "checkpoints", "default"), source / "checkpoints" / "default")
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(dist), str(source)],
                   check=True, capture_output=True)
    wheel = next(dist.glob("*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The new environment borrows this one's installed dependencies (TensorFlow is far too big
    # to install again), but not its poetry_rnn: the wheel's copy comes first on sys.path.
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    with open(os.path.join(site, "borrowed.pth"), "w") as handle:
        handle.write("\n".join(sorted(paths)) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}
    where = subprocess.run([str(python), "-c", "import poetry_rnn; print(poetry_rnn.__file__)"],
                           capture_output=True, text=True, cwd=elsewhere, env=env, check=True).stdout
    assert where.startswith(str(venv))
    for command in ([str(python), "-m", "poetry_rnn.write"], [str(venv / "bin" / "poetry-write")]):
        result = subprocess.run([*command, "--begin", "月", "--form", "wujue", "--seed", "1"],
                                capture_output=True, text=True, cwd=elsewhere, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.split()
        assert len(lines) == 5 and lines[0].startswith("《")  # the subject it drew, then the poem
        assert lines[1][0] == "月" and all(len(line) == 6 for line in lines[1:])
    # the ci model, the critic, the over-use table and the training poems' fingerprints travel too, inside the package; the ci
    # model writes the ci
    shipped = subprocess.run([str(python), "-c", "import os, poetry_rnn.poet as p, poetry_rnn.model.store as s; "
                              "print(*(os.path.isfile(os.path.join(s.DEFAULT_MODEL_DIR, f)) for f in ('ci/weights.npz', "
                              "'critic/weights.npz', 'overuse.npz', 'training_poems.npy', 'ci/training_poems.npy')))"],
                             capture_output=True, text=True, cwd=elsewhere, env=env, check=True).stdout.strip()
    assert shipped == "True True True True True"
    result = subprocess.run([str(python), "-m", "poetry_rnn.write", "--cipai", "如梦令", "--seed", "1"],
                            capture_output=True, text=True, cwd=elsewhere, env=env, timeout=300)
    assert result.returncode == 0 and result.stdout.startswith("《如梦令》\n"), result.stderr
