"""docs/architecture.md's floors match the package's real imports.

The page says which part of poetry_rnn may import which. A page like that
goes stale without anyone noticing, so this test reads its floors block and
checks it against the code: every package is on a floor, every name on a
floor exists, no module imports from a higher floor, and every file path the
page quotes exists.
"""

import ast
import os
import re




def _repo_root():
    """The folder that holds poetry_rnn/, found from here so the test can move between tiers."""
    folder = os.path.dirname(os.path.abspath(__file__))
    while not os.path.isfile(os.path.join(folder, "poetry_rnn", "__init__.py")):
        parent = os.path.dirname(folder)
        if parent == folder:
            raise RuntimeError("no poetry_rnn/ above " + __file__)
        folder = parent
    return folder


REPO = _repo_root()
PACKAGE = os.path.join(REPO, "poetry_rnn")
DOC = os.path.join(REPO, "docs", "architecture.md")
# Folders under poetry_rnn/ that hold data, not code.
NOT_CODE = {"data", "default_model", "static", "__pycache__"}


def doc_text():
    with open(DOC, encoding="utf-8") as handle:
        return handle.read()


def floors():
    """The floors block as a list of name sets, bottom floor first.

    The block is the first ```text fence under "## The floors"; the page lists
    the top floor first, one floor a line, and a label before a colon is
    not a name.
    """
    section = doc_text().split("## The floors", 1)[1]
    block = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    result = []
    for line in block.splitlines():
        names = line.split(":", 1)[-1].split()
        if names:
            result.append(set(names))
    return result[::-1]


def floor_of_name():
    levels = {}
    for level, names in enumerate(floors()):
        for name in names:
            assert name not in levels, f"{name} is on two floors"
            levels[name] = level
    return levels


def code_packages():
    """Folders directly under poetry_rnn/ that are packages."""
    return {name for name in os.listdir(PACKAGE)
            if name not in NOT_CODE and os.path.isfile(os.path.join(PACKAGE, name, "__init__.py"))}


def top_level_modules():
    return {name[:-3] for name in os.listdir(PACKAGE) if name.endswith(".py") and name != "__init__.py"}


def modules():
    """Every module of the package as a path relative to poetry_rnn/ (``generation/sampler.py``)."""
    found = []
    for folder, subfolders, names in os.walk(PACKAGE):
        subfolders[:] = sorted(d for d in subfolders if d not in NOT_CODE)
        found += [os.path.relpath(os.path.join(folder, n), PACKAGE) for n in sorted(names) if n.endswith(".py")]
    return found


def owner(path):
    """The name on a floor that a module belongs to: its top folder, or its own name at the top level."""
    parts = path.split(os.sep)
    return parts[0] if len(parts) > 1 else parts[0][:-3]


def imported_names(path):
    """The floor names one module imports from, at module level and inside functions alike.

    ``from poetry_rnn.x.y import z``, ``from poetry_rnn import x`` and
    ``import poetry_rnn.x`` all count as importing ``x``; relative imports are
    resolved the same way. A bare ``import poetry_rnn``, or a name from the
    package's own ``__init__`` (``from poetry_rnn import PoetryError``), is
    the front door, which imports only infra when it loads, so it is not
    counted.
    """
    here = ["poetry_rnn"] + path[:-3].split(os.sep)[:-1]  # the package the module is in
    with open(os.path.join(PACKAGE, path), encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    dotted = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            dotted += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = here[:len(here) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            if base == "poetry_rnn":
                dotted += [f"poetry_rnn.{alias.name}" for alias in node.names]
            else:
                dotted.append(base)
    names = set()
    known = code_packages() | top_level_modules()
    for name in dotted:
        parts = name.split(".")
        if parts[0] == "poetry_rnn" and len(parts) > 1 and parts[1] in known:
            names.add(parts[1])
    return names


def upward_imports():
    """(module path, floor name) for each import that reaches a higher floor than the module's own."""
    levels = floor_of_name()
    top = len(floors()) - 1
    found = set()
    for path in modules():
        name = owner(path)
        mine = top if name == "__init__" else levels[name]
        for target in imported_names(path):
            if levels[target] > mine:
                found.add((path.replace(os.sep, "/"), target))
    return found


def test_the_floors_block_names_real_packages_and_modules():
    named = set(floor_of_name())
    missing = sorted(n for n in named if n not in code_packages() | top_level_modules())
    assert missing == [], f"named in docs/architecture.md but not a package with __init__.py nor a module: {missing}"


def test_every_package_and_top_level_module_is_on_a_floor():
    named = set(floor_of_name())
    unplaced = sorted((code_packages() | top_level_modules()) - named)
    assert unplaced == [], f"add these to the floors block of docs/architecture.md: {unplaced}"


def test_no_module_imports_from_a_higher_floor():
    upward = sorted(upward_imports())
    assert upward == [], f"imports from a higher floor (move the code, or the floor): {upward}"


def quoted_paths(text):
    """Backticked file paths in the page: ``generation/processors.py``, ``poetry_rnn/...``, ``tests/...``."""
    paths = []
    for token in re.findall(r"`([^`\s]+)`", text):
        if "/" in token or re.search(r"\.(py|html|md)$", token):
            if not re.fullmatch(r"[\w./-]+", token) or "://" in token:
                continue
            paths.append(token)
    return paths


def resolve(path):
    first = path.split("/", 1)[0]
    if first in {"poetry_rnn", "tests", "docs", "benchmarks", "checkpoints", "data", "setup.py"} or first.startswith("."):
        return os.path.join(REPO, path)
    return os.path.join(PACKAGE, path)


def test_every_quoted_path_exists():
    paths = quoted_paths(doc_text())
    assert len(paths) >= 10, "the page quotes module paths; did the pattern stop matching?"
    missing = sorted(p for p in paths if not os.path.exists(resolve(p)))
    assert missing == [], f"docs/architecture.md names paths that do not exist: {missing}"


def test_the_page_is_one_page():
    """A newcomer reads it in one sitting; detail belongs in the modules' docstrings."""
    assert len(doc_text().encode("utf-8")) <= 7000
