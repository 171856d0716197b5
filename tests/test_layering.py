"""The house's one rule: data flow one way through the packages.

``datasets`` (formats, layout, sequences) → ``augmentations`` (preparing a clip: normalisation,
resampling, augmentation, torch datasets) → ``models`` (the network and its checkpoint format)
→ ``evaluation`` (embedding, ranking, reports, galleries) → ``training`` (uses evaluation every
epoch) → ``export``; entry points, ``notebooks/``, ``web/`` and ``bench/`` sit on top. A package
may import the ones below it, never one above, and that includes imports inside functions
(which is how cycles hide). Within a package, modules import each other without cycles.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("datasets", "augmentations", "models", "evaluation", "training", "export")
ENTRY_POINTS = ("entrypoint", "train", "evaluate", "predict", "preprocessing", "convert")  # the top: above every package


def imported_modules(source: str) -> list[tuple[int, str]]:
    """Every absolute import in ``source`` as ``(line, dotted name)``, function-local ones included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def upward_imports(package: str, source: str, where: str) -> list[str]:
    """The imports in ``source`` (a module of ``package``) of a package above it."""
    rank = LAYERS.index(package)
    return [f"{where}:{line} imports {name} ({name.split('.')[0]} is above {package})"
            for line, name in imported_modules(source)
            if (name.split(".")[0] in LAYERS and LAYERS.index(name.split(".")[0]) > rank)
            or name.split(".")[0] in ENTRY_POINTS]


def package_modules(package: str) -> dict[str, Path]:
    folder = ROOT / package
    return {".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
            for path in sorted(folder.rglob("*.py"))}


def module_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (a list of nodes, first repeated last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def intra_package_graph(package: str) -> dict[str, set[str]]:
    """Module → the modules of the same package it imports (a package's ``__init__`` re-exports aside)."""
    modules = package_modules(package)
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        if path.name == "__init__.py":
            continue  # a package's front door imports its rooms; rooms importing the front door is the cycle
        for _, imported in imported_modules(path.read_text()):
            target = imported if imported in modules else imported.rpartition(".")[0]
            if target in modules and target != name and not modules[target].name == "__init__.py":
                graph[name].add(target)
    return graph


@pytest.mark.parametrize("package", LAYERS)
def test_no_package_imports_one_above_it(package):
    violations = []
    for name, path in package_modules(package).items():
        violations += upward_imports(package, path.read_text(), str(path.relative_to(ROOT)))
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize("package", LAYERS)
def test_no_import_cycle_inside_a_package(package):
    assert module_cycle(intra_package_graph(package)) is None


def test_the_checks_catch_what_they_forbid():
    """The scanners see a function-local upward import, and a cycle, when there is one."""
    hidden = "import numpy\n\ndef f():\n    from training.engine import train\n    return train\n"
    assert upward_imports("evaluation", hidden, "x.py") == [
        "x.py:4 imports training.engine (training is above evaluation)",
        "x.py:4 imports training.engine.train (training is above evaluation)"]
    assert upward_imports("training", hidden, "x.py") == []
    assert upward_imports("datasets", "import models.spoter\n", "y.py") == [
        "y.py:1 imports models.spoter (models is above datasets)"]
    assert upward_imports("export", "from entrypoint import run_cli\n", "z.py") == [
        "z.py:1 imports entrypoint (entrypoint is above export)",
        "z.py:1 imports entrypoint.run_cli (entrypoint is above export)"]
    assert module_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert module_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_every_package_is_in_the_layering():
    """A new package must be given its place in LAYERS (or be an entry-point folder)."""
    top_level = {"bench", "notebooks", "tests", "web", "scripts", "docs", "configs"}
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert packages - top_level <= set(LAYERS), sorted(packages - top_level - set(LAYERS))
