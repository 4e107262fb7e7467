"""Writing files so that an interrupted run never replaces a good file.

Everything the package writes for the user (poems.txt, config.json, the
vocabulary, generated poems, reports) goes through :func:`atomic_write`:
the bytes land in a temporary file in the same folder, are flushed to disk,
and only then renamed over the target. ``os.replace`` is atomic on POSIX, so
a reader sees either the old file or the whole new one, never half of it.
"""

import contextlib
import errno
import functools
import os
import stat
import tempfile

from poetry_rnn.errors import PoetryError


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


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding="utf-8"):
    """Open a temporary file beside ``path``; on success rename it to ``path``.

    If the body raises (or the process dies), the target is untouched and the
    temporary file is removed (or, after a kill, left as ``.name.*.tmp``).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise PoetryError(f"cannot write {path}: {error.strerror or error}") from None
    finished = False
    try:
        os.fchmod(fd, _mode_for(path))  # mkstemp makes it private (0600); give what open() would
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": encoding})) as handle:
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


def write_text(path, text):
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    with atomic_write(path) as handle:
        handle.write(text)
