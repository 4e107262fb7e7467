"""Writing files so that an interrupted run never replaces a good file, nor leaves litter.

Everything the package writes for the user (poems.txt, config.json, the
vocabulary, generated poems, reports) goes through :func:`atomic_write`:
the bytes land in a temporary file in the same folder, are flushed to disk,
and only then renamed over the target. ``os.replace`` is atomic on POSIX, so
a reader sees either the old file or the whole new one, never half of it.
Whole folders (an exported model) are built in a :func:`staging_folder` and
put in place by :func:`swap_folder`.

A temporary file or folder is named ``.NAME.<random>.tmp`` beside its target
and holds an ``fcntl.flock`` while its run uses it. The kernel drops the lock
when the process dies (kill -9 included), so the next write of the same
target can tell litter (nobody holds it) from another live run's work (held),
and removes only the litter.
"""

import contextlib
import errno
import fcntl
import functools
import glob
import json
import math
import os
import shutil
import stat
import tempfile

from poetry_rnn.infra.errors import PoetryError

# Where the package keeps what it can rebuild (downloaded corpora, a vocabulary's prosody
# tables): POETRY_RNN_CACHE, else ~/.cache/poetry_rnn.
CACHE_DIR = os.path.expanduser(os.environ.get("POETRY_RNN_CACHE") or os.path.join("~", ".cache", "poetry_rnn"))

# Characters that end a line for str.splitlines() (and so for most editors and readers).
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")

_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


@functools.lru_cache(maxsize=None)
def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _mode_for(path):
    """The existing file's permissions, else 0666 less the umask (what open() gives)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _temporary_name(path):
    """(folder, prefix, suffix) of the temporary files and folders made for ``path``."""
    return os.path.dirname(os.path.abspath(path)), f".{os.path.basename(os.path.normpath(path))}.", ".tmp"


def _held_temporary(path, directory=False):
    """A new temporary file or folder beside ``path``, and a descriptor that holds its flock.

    A run cleaning up (``remove_leftovers``) may have taken a file it found
    unlocked between its creation and our lock; then it is gone (no links
    left) and we make another.
    """
    folder, prefix, suffix = _temporary_name(path)
    while True:
        if directory:
            tmp = tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=folder)
            descriptor = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        else:
            descriptor, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # waits while a cleaner looks at it
        if os.fstat(descriptor).st_nlink:
            return tmp, descriptor
        os.close(descriptor)


def remove_leftovers(path):
    """Delete the temporary files and folders that interrupted writes of ``path`` left; return their names.

    Only those no live process holds: another run writing the same target
    at this moment keeps its own.
    """
    folder, prefix, suffix = _temporary_name(path)
    removed = []
    for leftover in sorted(glob.glob(os.path.join(glob.escape(folder), glob.escape(prefix) + "*" + suffix))):
        try:
            descriptor = os.open(leftover, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # gone meanwhile, or not ours to read
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(leftover).st_ino != os.fstat(descriptor).st_ino:
                continue  # renamed into place by its (finished) run meanwhile
            if os.path.isdir(leftover):
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                os.unlink(leftover)
            removed.append(os.path.basename(leftover))
        except OSError:  # BlockingIOError: a live run's; otherwise gone meanwhile
            continue
        finally:
            os.close(descriptor)
    return removed


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding="utf-8"):
    """Open a temporary file beside ``path``; on success rename it to ``path``.

    If the body raises, the target is untouched and the temporary file is
    removed; a process killed meanwhile leaves it, and the next write of
    ``path`` removes it.
    """
    path = os.fspath(path)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        remove_leftovers(path)
        tmp, holder = _held_temporary(path)
    except OSError as error:
        raise PoetryError(f"cannot write {path}: {error.strerror or error}") from None
    finished = False
    try:
        os.fchmod(holder, _mode_for(path))  # mkstemp makes it private (0600); give what open() would
        # Writes go through a second descriptor: closing the file must not drop the lock before the rename.
        with os.fdopen(os.dup(holder), mode, **({} if "b" in mode else {"encoding": encoding})) as handle:
            yield handle
            finished = True
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        # Our own flush/fsync/rename failing, or a full disk anywhere: one line, not a traceback.
        if isinstance(error, OSError) and (finished or error.errno in _WRITE_ERRNOS):
            raise PoetryError(f"cannot write {path}: {error.strerror or error}") from None
        raise
    finally:
        os.close(holder)


@contextlib.contextmanager
def staging_folder(path):
    """A new empty folder beside ``path`` to build it in; removed afterwards unless moved into place.

    Leftovers of earlier, interrupted builds of ``path`` are removed first.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    remove_leftovers(path)
    tmp, holder = _held_temporary(path, directory=True)
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; give what mkdir would
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing left there once swapped in
        os.close(holder)


def old_copy(path):
    """Where :func:`swap_folder` keeps the folder it replaces until the new one is in place."""
    return os.path.normpath(path) + ".old"


def swap_folder(staging, path):
    """Put the finished folder ``staging`` at ``path``, replacing what is there.

    Two renames (``path`` -> ``path.old``, ``staging`` -> ``path``), then
    ``path.old`` is deleted. A kill between any two steps leaves either
    ``path`` whole, or ``path.old`` whole and ``path`` missing; the next
    :func:`finish_interrupted_swap` sorts out either.
    """
    old = old_copy(path)
    finish_interrupted_swap(path)
    if os.path.exists(path):
        os.replace(path, old)
    os.replace(staging, path)
    shutil.rmtree(old, ignore_errors=True)


def finish_interrupted_swap(path):
    """Undo or complete a :func:`swap_folder` that a kill cut short; return what was done, or None.

    ``path.old`` beside a missing ``path``: the kill fell between the two
    renames, and ``path.old`` is the whole old folder: it is put back.
    ``path.old`` beside ``path``: the new folder was in place, and ``path.old``
    (whole or half deleted) is removed.
    """
    old = old_copy(path)
    if not os.path.isdir(old):
        return None
    if os.path.lexists(path):
        shutil.rmtree(old)
        return f"removed {old}, left by an interrupted swap"
    os.replace(old, path)
    return f"restored {path} from {old}, left by an interrupted swap"


def finite_json(data, **options):
    """``json.dumps(data)`` with NaN and infinities as null: JSON has no such numbers, and strict readers refuse them."""

    def finite(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(v) for v in value]
        return value

    return json.dumps(finite(data), allow_nan=False, **options)


def write_text(path, text):
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    with atomic_write(path) as handle:
        handle.write(text)


def write_count_table(path, header, rows):
    """Write ``rows`` [(key, a, b)] as TSV under a ``# header`` line, atomically (the package's count tables)."""
    lines = [f"# {header}"] + [f"{key}\t{a}\t{b}" for key, a, b in rows]
    write_text(path, "\n".join(lines) + "\n")
    return len(lines) - 1


def read_count_table(path):
    """{key: (a, b)} from a table ``write_count_table`` wrote."""
    counts = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip() and not line.startswith("#"):
                key, a, b = line.rstrip("\n").split("\t")
                counts[key] = (int(a), int(b))
    return counts
