"""Console scripts (``poetry-write``, ``poetry-train``, ...) beside the ``python -m`` forms.

Each script runs its entry-point module exactly as ``python -m poetry_rnn.<name>``
would, so the two forms cannot drift apart.
"""

import functools
import runpy


def run_entry_point(name):
    runpy.run_module(f"poetry_rnn.{name}", run_name="__main__", alter_sys=True)


prepare = functools.partial(run_entry_point, "prepare")
train = functools.partial(run_entry_point, "train")
write = functools.partial(run_entry_point, "write")
evaluate = functools.partial(run_entry_point, "evaluate")
export = functools.partial(run_entry_point, "export")
compare = functools.partial(run_entry_point, "compare")
serve = functools.partial(run_entry_point, "serve")
critic = functools.partial(run_entry_point, "critic")
