"""One training run per model directory, held by an OS file lock.

Two runs training into one folder interleave their checkpoints, and one
silently continues from the other's weights. ``hold(model_dir)`` takes an
exclusive ``fcntl.flock`` on the model directory itself for as long as the
run lasts; a second run is refused at once, naming the run that holds it.

The kernel drops a flock when the process holding it ends, however it ends
(kill -9 included), so a lock is never stale and nothing has to be cleaned up
before the next run. Locking the folder rather than a lock file inside it
leaves the folder as it was: the only trace is ``train.pid`` (the holder's pid
and start time, for the refused run's message), written while the lock is
held and removed when the run ends; after a kill -9 it stays, says nothing
that matters, and the next run replaces it.

flock is advisory and local to a machine (and to filesystems that pass it
through); under multi-worker ``tf.distribute`` only the chief, which alone
writes the model directory, takes it.
"""

import contextlib
import fcntl
import os
import time

from poetry_rnn.infra import files
from poetry_rnn.infra.errors import PoetryError

PID_FILE = "train.pid"


@contextlib.contextmanager
def hold(model_dir, chief=True):
    """Hold ``model_dir``'s training lock for the body; PoetryError if another run holds it.

    A worker that is not the chief takes nothing (the chief's lock covers the run).
    """
    if not chief:
        yield
        return
    try:
        os.makedirs(model_dir, exist_ok=True)
        descriptor = os.open(model_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise PoetryError(f"cannot lock model directory {model_dir}: {error.strerror or error}") from None
    pid_file = os.path.join(model_dir, PID_FILE)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PoetryError(
                f"{model_dir} is being trained by another run ({holder(pid_file)}); "
                f"wait for it or use another --model_dir"
            ) from None
        files.write_text(pid_file, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(pid_file)
    finally:
        os.close(descriptor)  # releases the lock


def holder(pid_file, attempts=20):
    """The holding run's 'pid N, started ...', as it wrote it in ``pid_file``.

    A run that has just taken the lock may not have written the file yet, so
    a missing file is looked for again for a moment before the holder counts
    as unknown.
    """
    for _ in range(attempts):
        with contextlib.suppress(OSError):
            with open(pid_file, encoding="utf-8", errors="replace") as handle:
                text = handle.read(200).strip()
            if text:
                return text
        time.sleep(0.05)
    return "pid unknown"
