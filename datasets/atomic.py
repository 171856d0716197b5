"""Write files so that a reader (or a crash) never sees a half-written one."""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path


def _temporary_beside(path: Path, make_parents: bool) -> tuple[int, str]:
    """An empty temporary file next to ``path`` (same filesystem, so the final rename is atomic)
    with the usual permissions (mkstemp makes 0600 files)."""
    if make_parents:
        make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~current_umask())
    return fd, tmp


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", make_parents: bool = True):
    """Yield a handle to a temporary file next to ``path``; rename it over ``path`` on success.

    The data are fsynced before the rename, so after a crash ``path`` holds either the old
    file or the complete new one. ``make_parents=False`` fails when the folder is gone
    instead of creating it (for entries another process may have just removed).
    """
    path = Path(path)
    fd, tmp = _temporary_beside(path, make_parents)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Like :func:`atomic_write` for writers that want a file name, not a handle (e.g. a
    library that saves to a path): yield a temporary path next to ``path``, then fsync it
    and rename it over ``path`` when the block succeeds."""
    path = Path(path)
    fd, tmp = _temporary_beside(path, make_parents=True)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def make_folder(folder: Path) -> None:
    """``mkdir -p``; a file in the way gives an OSError naming it (not ``File exists: <parent>``)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        raise NotADirectoryError(errno.ENOTDIR, f"is a file, so the folder {folder} cannot be created there",
                                 str(blocker)) from None


def atomic_save_npy(path: str | os.PathLike, array) -> None:
    import numpy as np
    with atomic_write(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
