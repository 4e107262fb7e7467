"""The README's "From Python" snippet runs as written, with the shipped model."""

import os
import re
import subprocess
import sys

from conftest import REPO


def test_the_from_python_snippet_runs(tmp_path):
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    section = readme.split("## From Python", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            env=dict(os.environ, PYTHONPATH=REPO), timeout=300)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("日") and len(first.rstrip("，。")) >= 7  # a 七绝's text starts with the begin character
