"""The project's own files, for tests that scan the sources (never a virtual environment's).

A checkout commonly holds a virtual environment (``venv/``, ``env/``, ...) whose
third-party files would fail any rule the project sets for its own code. So the list is
what git knows: tracked files plus untracked ones that ``.gitignore`` does not exclude
(``git ls-files --cached --others --exclude-standard``), so a new source file a developer
has not added yet is scanned too. Without git (an exported tarball, git not installed)
it falls back to a walk. Either way every folder holding a ``pyvenv.cfg`` (what ``python
-m venv`` and virtualenv write at an environment's root) is left out, whatever its name
and whether or not it is ignored.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

VENV_MARKER = "pyvenv.cfg"
# Left out by the fallback walk: what .gitignore keeps out of the git listing.
WALK_SKIPPED = {".git", "__pycache__", "node_modules", ".pytest_cache", ".hypothesis", ".cache"}


def _git_listing(root: Path) -> list[Path] | None:
    """Paths git lists under ``root``, or None when git or the repository is unavailable."""
    try:
        result = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    names = [n for n in result.stdout.decode("utf-8", "surrogateescape").split("\0") if n]
    return [root / n for n in names]


def _walk(root: Path) -> list[Path]:
    """Every file under ``root``, not descending into skipped or virtual-environment folders."""
    found = []
    for folder, dirs, files in os.walk(root):
        if VENV_MARKER in files and Path(folder) != root:
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if d not in WALK_SKIPPED)
        found += [Path(folder) / f for f in files]
    return found


def _outside_environments(root: Path, paths: list[Path]) -> list[Path]:
    """``paths`` minus those inside a folder (below ``root``) that holds a ``pyvenv.cfg``."""
    folders = {p.parent for p in paths}
    venvs = {f for f in folders | {a for f in folders for a in f.parents}
             if f != root and root in f.parents and (f / VENV_MARKER).is_file()}
    return [p for p in paths if not venvs & set(p.parents)]


def project_files(root: str | os.PathLike, suffix: str = "") -> list[Path]:
    """The project's files under ``root`` whose name ends with ``suffix``, sorted (see module doc)."""
    root = Path(root).resolve()
    listed = _git_listing(root)
    paths = _walk(root) if listed is None else listed
    paths = [p for p in paths if p.name.endswith(suffix) and p.is_file()]  # is_file: tracked but deleted
    return sorted(_outside_environments(root, paths))
