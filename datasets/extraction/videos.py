"""Which videos a run handles: listing a folder, naming ids, extensions, sharding, trims from an index.

See the package docstring (*Names*, *Sharding*) for the rules these functions implement.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from datasets.errors import DataError, UsageError

DEFAULT_EXTENSIONS = ("mp4", "avi", "mov", "mkv", "webm")


def parse_extensions(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"mp4, .AVI"`` → ``("mp4", "avi")``; refuses an empty list."""
    items = text.split(",") if isinstance(text, str) else list(text)
    exts = tuple(dict.fromkeys(e.strip().lstrip(".").lower() for e in items if e.strip().lstrip(".")))
    if not exts:
        raise UsageError(f"--extensions: no extension given in {text!r}")
    return exts


def video_id(relative: str, recursive: bool) -> str:
    """Output id of a video from its POSIX path relative to the videos folder (see the package docstring)."""
    path = Path(relative)
    return "__".join(path.with_suffix("").parts) if recursive else path.stem


def list_videos(folder: str | os.PathLike, extensions: Iterable[str] = DEFAULT_EXTENSIONS,
                recursive: bool = False) -> list[str]:
    """Relative POSIX paths of the videos in ``folder``, sorted (the order shards split)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"videos folder {folder} does not exist or is not a folder")
    wanted = {f".{e.lower()}" for e in extensions}
    found = []
    for path in (folder.rglob("*") if recursive else folder.iterdir()):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        # A broken link is listed too, so it is reported as unreadable rather than silently ignored.
        if path.suffix.lower() in wanted and (path.is_file() or (path.is_symlink() and not path.exists())):
            found.append(relative.as_posix())
    return sorted(found)


def shard(items: list, num_shards: int, shard_index: int) -> list:
    """Deterministic partition of a sorted list: shard ``i`` takes ``items[i::N]``."""
    if num_shards < 1:
        raise UsageError(f"--num-shards must be at least 1, got {num_shards}")
    if not 0 <= shard_index < num_shards:
        raise UsageError(f"--shard-index must be in 0..{num_shards - 1}, got {shard_index}")
    return items[shard_index::num_shards]


def shard_suffix(num_shards: int, shard_index: int) -> str:
    """File-name suffix of a shard's CSVs (empty when not sharded)."""
    return "" if num_shards == 1 else f"-{shard_index}-of-{num_shards}"


def load_trims(index_path: str | os.PathLike) -> dict[str, tuple[int, int]]:
    """``video_id → (frame_start, frame_end)`` from a WLASL-style JSON or CSV index.

    The index is parsed by :func:`datasets.landmark_folder.read_index`; ranges are checked
    here (a video listed twice must have the same range).
    """
    from datasets.landmark_folder import read_index

    trims: dict[str, tuple[int, int]] = {}
    for entry in read_index(index_path):
        start, end = entry.frame_start, entry.frame_end
        where = f"{index_path}: video_id {entry.video_id!r}"
        if start < 1:
            raise DataError(f"{where}: frame_start must be >= 1 (1-based), got {start}")
        if end != -1 and end < start:
            raise DataError(f"{where}: frame_end must be -1 or >= frame_start {start}, got {end}")
        if trims.setdefault(entry.video_id, (start, end)) != (start, end):
            raise DataError(f"{where}: listed twice with different frame ranges "
                            f"{trims[entry.video_id]} and {(start, end)}")
    return trims


__all__ = ["DEFAULT_EXTENSIONS", "list_videos", "load_trims", "parse_extensions", "shard", "shard_suffix",
           "video_id"]
