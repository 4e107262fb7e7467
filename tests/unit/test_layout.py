"""Entry points (the top-level command modules) import the subpackages below them, never each other.

The rest of the layering (which subpackage may import which) is docs/architecture.md's floors,
checked by test_architecture_doc.py; this test keeps the rule that no module anywhere in the package,
in a subpackage or at the top, imports an entry point.
"""

import ast
import glob
import os

from conftest import REPO

ENTRY_POINTS = {"prepare", "train", "write", "evaluate", "export", "compare", "serve", "critic"}


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


def package_modules():
    """Every module of the package, top level and subpackages alike, as (dotted name, path)."""
    package = os.path.join(REPO, "poetry_rnn")
    for path in sorted(glob.glob(os.path.join(package, "**", "*.py"), recursive=True)):
        yield os.path.relpath(path, package)[:-3].replace(os.sep, "."), path


def test_the_entry_points_are_top_level_modules():
    assert ENTRY_POINTS <= {name for name, _ in package_modules() if "." not in name}


def test_no_module_imports_an_entry_point():
    modules = dict(package_modules())
    assert any("." in name for name in modules), "the subpackages' modules are checked too"
    offenders = {}
    for module, path in modules.items():
        bad = imported_modules(path) & ENTRY_POINTS - {module}
        if bad:
            offenders[module] = sorted(bad)
    assert offenders == {}
