"""Writing files so that an interrupted run never replaces a good file.

Everything the package writes for the user (poems.txt, config.json, the
vocabulary, generated poems, reports) goes through :func:`atomic_write`:
the bytes land in a temporary file in the same folder, are flushed to disk,
and only then renamed over the target. ``os.replace`` is atomic on POSIX, so
a reader sees either the old file or the whole new one, never half of it.
"""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding="utf-8"):
    """Open a temporary file beside ``path``; on success rename it to ``path``.

    If the body raises (or the process dies), the target is untouched and the
    temporary file is removed (or, after a kill, left as ``.name.*.tmp``).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": encoding})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path, text):
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    with atomic_write(path) as handle:
        handle.write(text)
