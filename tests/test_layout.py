"""The layering the README describes: entry points import the layers below them, never each other."""

import ast
import glob
import os

from conftest import REPO

ENTRY_POINTS = {"prepare", "train", "write", "evaluate", "export", "compare", "serve"}


def imported_modules(path):
    names = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom) and node.module == "poetry_rnn":
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("poetry_rnn."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("poetry_rnn.")}
    return names


def test_no_module_imports_an_entry_point():
    offenders = {}
    for path in glob.glob(os.path.join(REPO, "poetry_rnn", "*.py")):
        module = os.path.basename(path)[:-3]
        bad = imported_modules(path) & ENTRY_POINTS - {module}
        if bad:
            offenders[module] = sorted(bad)
    assert offenders == {}
