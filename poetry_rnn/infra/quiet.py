"""TensorFlow without its start-up chatter, and without hiding a real crash.

TensorFlow's native code prints CUDA-probe and CPU-feature notices while it
loads and first lists devices ("Could not find cuda drivers", "This
TensorFlow binary is optimized ..."), before any log level applies; on a CPU
machine they are noise around our one-line errors. ``install()`` (called by
each command-line entry point before its imports, never by ``import
poetry_rnn``: a program that embeds the package keeps its own process as it
was) arranges that the
first ``import tensorflow`` anywhere in the process runs with file
descriptor 2 sent through a filter: a small child process that drops the
known notice lines and copies every other byte to the real stderr at once.
Because the child is a separate process, a crash message TensorFlow prints
while loading still reaches the terminal even if this process dies.

``TF_CPP_MIN_LOG_LEVEL=0`` (or 1, 2) shows everything, as TensorFlow would.
"""

import contextlib
import importlib.abc
import importlib.util
import os
import subprocess
import sys

NOTICES = (
    "absl::InitializeLog()",
    "cudart_stub.cc",
    "cuda_platform.cc",
    "cuInit",
    "cpu_feature_guard.cc",
    "To enable the following instructions",
    "oneDNN custom operations",
    "Unable to register cu",
    "TF-TRT Warning",
)

# The filter child: line by line, drop notices, pass the rest through unbuffered.
_FILTER = (
    "import sys\n"
    "notices = sys.argv[1:]\n"
    "for line in sys.stdin.buffer:\n"
    "    if not any(n.encode() in line for n in notices):\n"
    "        sys.stderr.buffer.write(line); sys.stderr.buffer.flush()\n"
)


@contextlib.contextmanager
def filtered_stderr():
    """Send fd 2 through the notice filter for the duration of the block."""
    try:
        child = subprocess.Popen([sys.executable, "-S", "-c", _FILTER, *NOTICES], stdin=subprocess.PIPE)
    except OSError:  # no way to start the filter: show everything rather than hide anything
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(child.stdin.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        child.stdin.close()
        child.wait()


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with filtered_stderr():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # the CUDA probe prints on the first device listing


class _FirstTensorFlowImport(importlib.abc.MetaPathFinder):
    """Wraps the loader of the first ``import tensorflow``, then steps aside."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install():
    """Quiet the first TensorFlow import of this process (unless TF_CPP_MIN_LOG_LEVEL asks for noise)."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") in ("0", "1", "2") or "tensorflow" in sys.modules:
        return
    # 3: also TensorFlow's run-time notices (e.g. "oneDNN supports DT_BOOL only
    # on platforms with AVX-512", printed at error level while writing poems).
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if not any(isinstance(f, _FirstTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _FirstTensorFlowImport())
