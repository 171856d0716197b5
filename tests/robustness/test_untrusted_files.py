"""Data and model files are untrusted: no code path may evaluate or unpickle them.

A static scan of every project source (Python files, notebook code cells, the web page's
scripts): no ``eval``/``exec``/``ast.literal_eval``/pickle-family loaders, every
``torch.load`` passes ``weights_only=True`` and every ``np.load`` passes
``allow_pickle=False``. The behaviour itself (a malicious checkpoint is refused and runs
nothing, an object-array gallery is refused) is tested in test_bad_checkpoints.py; the web
server's refusal of ``/../`` in tests/web/test_web_serve.py::test_web_serve_refuses_path_traversal.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import project_files as listing
from tests.robustness.corpus import REPO

# Within the project's files (tests/project_files.py: never a virtual environment's), the
# folders that are not project code: the tests themselves and generated outputs.
SKIPPED_DIRS = {"tests", "out-checkpoints", "data"}
# Calls that turn file contents into code or arbitrary objects.
FORBIDDEN = {"eval", "exec", "literal_eval", "compile", "pickle.load", "pickle.loads", "pickle.Unpickler",
             "cPickle.load", "dill.load", "dill.loads", "marshal.load", "marshal.loads", "shelve.open",
             "joblib.load", "pd.read_pickle", "pandas.read_pickle", "yaml.load", "yaml.unsafe_load",
             "torch.jit.load"}
# (file, call) pairs that are allowed, with the reason.
ALLOWED = {
    # the benchmark's reference reader reproduces the original project's slow parser (literal_eval
    # per cell) to time against; it reads the benchmark's own generated files, never user data
    ("bench/bench_loading.py", "literal_eval"),
}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return "missing"


def problems_in(source: str, where: str) -> list[str]:
    """Every unsafe call in ``source`` as ``where:line: what``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        short = name.rsplit(".", 1)[-1]
        if (name in FORBIDDEN or short in ("eval", "exec", "literal_eval")) and (where, short) not in ALLOWED:
            if short == "eval" and isinstance(node.func, ast.Attribute):
                continue  # model.eval(): a method, not the builtin
            found.append(f"{where}:{node.lineno}: {name}(...)")
        if name == "torch.load" and _keyword(node, "weights_only") is not True:
            found.append(f"{where}:{node.lineno}: torch.load without weights_only=True")
        if name in ("np.load", "numpy.load") and _keyword(node, "allow_pickle") is not False:
            found.append(f"{where}:{node.lineno}: np.load without allow_pickle=False")
    return found


def project_files(suffix: str, root: Path | None = None) -> list[Path]:
    root = Path(root or REPO).resolve()
    return [p for p in listing.project_files(root, suffix) if not SKIPPED_DIRS & set(p.relative_to(root).parts[:-1])]


def notebook_source(path: Path) -> str:
    """Code cells of a notebook, IPython magics and shell lines removed."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines = []
    for cell in cells:
        if cell.get("cell_type") == "code":
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            lines += [line for line in text.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def test_the_scan_finds_unsafe_calls():
    """The checker itself: each kind of unsafe call is reported, safe ones are not."""
    unsafe = ("import ast, pickle, torch, numpy as np\n"
              "eval(text)\nast.literal_eval(cell)\npickle.loads(blob)\n"
              "torch.load(path)\ntorch.load(path, weights_only=False)\nnp.load(path)\n"
              "np.load(path, allow_pickle=True)\n")
    safe = ("import torch, numpy as np\nmodel.eval()\ntorch.load(p, weights_only=True)\n"
            "np.load(p, allow_pickle=False)\n")
    assert len(problems_in(unsafe, "x.py")) == 7
    assert problems_in(safe, "x.py") == []


def _checkout_with_a_venv(root: Path, git: bool) -> None:
    """A small project: a tracked source, a new untracked one, and a ``venv/`` holding pip-like code."""
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "tracked.py").write_text("import numpy as np\nnp.load(p, allow_pickle=False)\n")
    venv = root / "venv"
    (venv / "lib" / "site-packages" / "pip").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("include-system-site-packages = false\n")
    (venv / "lib" / "site-packages" / "pip" / "cache.py").write_text("import pickle\npickle.load(handle)\n")
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        subprocess.run(["git", "-C", str(root), "add", "pkg/tracked.py"], check=True)
    (root / "pkg" / "new.py").write_text("import pickle\npickle.loads(blob)\n")  # not added yet


@pytest.mark.parametrize("git", [True, False], ids=["git-listing", "walk-without-git"])
def test_the_scan_skips_virtual_environments_but_not_new_sources(tmp_path, monkeypatch, git):
    """A user's ``venv/`` inside the checkout is not project code; an untracked new source is."""
    if git and shutil.which("git") is None:
        pytest.skip("git is not installed")
    _checkout_with_a_venv(tmp_path / "checkout", git)
    if not git:  # as if git were not installed
        monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    files = [p.relative_to(tmp_path / "checkout").as_posix() for p in project_files(".py", tmp_path / "checkout")]
    assert files == ["pkg/new.py", "pkg/tracked.py"]
    found = [problem for path in project_files(".py", tmp_path / "checkout")
             for problem in problems_in(path.read_text(encoding="utf-8"), path.name)]
    assert found == ["new.py:2: pickle.loads(...)"]


def test_python_sources_never_evaluate_or_unpickle_data():
    files = project_files(".py")
    assert any(p.name == "spoter_csv.py" for p in files) and any(p.name == "checkpoint.py" for p in files)
    found = [problem for path in files
             for problem in problems_in(path.read_text(encoding="utf-8"), path.relative_to(REPO).as_posix())]
    assert found == []


def test_notebooks_never_evaluate_or_unpickle_data():
    notebooks = project_files(".ipynb")
    if not notebooks:
        pytest.skip("no notebooks")
    found = [problem for path in notebooks
             for problem in problems_in(notebook_source(path), path.relative_to(REPO).as_posix())]
    assert found == []


def test_web_page_scripts_never_evaluate_strings():
    scripts = sorted((REPO / "web" / "src").glob("*.js"))
    if not scripts:
        pytest.skip("no web scripts")
    pattern = re.compile(r"(?<![\w.])eval\s*\(|new\s+Function\s*\(|set(?:Timeout|Interval)\s*\(\s*['\"`]")
    found = [f"{path.name}:{text[:match.start()].count(chr(10)) + 1}"
             for path in scripts for text in [path.read_text(encoding="utf-8")] for match in pattern.finditer(text)]
    assert found == []
