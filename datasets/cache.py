"""Binary cache of loaded datasets, so a 100 MB CSV is parsed once, not at every run.

An entry is a folder in the cache directory (``$SPOTER_CACHE_DIR``, else
``~/.cache/spoter_embeddings``; never beside the source, which may be read-only)::

    <kind>-<source name>-<key>/
        frames.npy   (F, 54, 2) float32, memory-mapped read-only on load
        meta.npz     offsets, labels, label_names, video_ids, signer_ids, splits
        meta.json    format version, source, reader digest, and per source file
                     its path, size, mtime_ns and sha256

The entry's place is derived from what was asked for (reader kind, source paths,
options); whether it is still valid is decided by the source files' content: when a
file's size and mtime_ns are unchanged it is trusted, otherwise it is re-hashed, so
``touch`` keeps the entry and an edit replaces it. A change to the reader modules
also invalidates every entry. Entries are built in a temporary folder and renamed
into place; a corrupt or unreadable entry is rebuilt, never fatal.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from datasets.atomic import atomic_write, current_umask
from datasets.sequences import SequenceSet

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CACHE_DIR_ENV = "SPOTER_CACHE_DIR"
FRAMES_FILE, META_ARRAYS_FILE, META_FILE = "frames.npy", "meta.npz", "meta.json"
# The modules whose code decides what a loaded dataset contains; editing one invalidates entries.
_READER_MODULES = ("layout.py", "sequences.py", "spoter_csv.py", "landmark_folder.py", "cache.py",
                   "formats/__init__.py", "formats/npy.py", "formats/pose_file.py", "formats/kaggle.py",
                   "formats/keypoints_json.py")
_STALE_TEMP_SECONDS = 3600  # temporary folders older than this were left by a crashed writer


def default_cache_dir() -> Path:
    """``$SPOTER_CACHE_DIR`` if set, else ``~/.cache/spoter_embeddings``."""
    configured = os.environ.get(CACHE_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "spoter_embeddings"


def reader_digest() -> str:
    """Hash of the reader modules' source, stored in each entry."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _READER_MODULES:
        digest.update(name.encode() + b"\0")
        with contextlib.suppress(OSError):
            digest.update((here / name).read_bytes())
    return digest.hexdigest()


# ------------------------------------------------------------------ fingerprints
@dataclass
class FileState:
    """What a source file looked like when an entry was built (size -1: it did not exist)."""

    path: str
    size: int
    mtime_ns: int
    sha256: str | None

    @classmethod
    def of(cls, path: Path, content: bool = True) -> "FileState":
        try:
            stat = path.stat()
        except OSError:  # missing or unreadable: the reader will say what is wrong with it
            return cls(str(path), -1, -1, None)
        return cls(str(path), stat.st_size, stat.st_mtime_ns, file_sha256(path) if content else None)


def file_sha256(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def _combined_digest(states: Sequence[FileState]) -> str:
    digest = hashlib.sha256()
    for state in states:
        digest.update(f"{state.path}\0{state.sha256}\n".encode())
    return digest.hexdigest()


def _current_states(recorded: Sequence[FileState]) -> list[FileState] | None:
    """The recorded files as they are now, or None if any content changed.

    Files whose size and mtime are unchanged are trusted; only the others are re-hashed.
    """
    current = []
    for old in recorded:
        new = FileState.of(Path(old.path), content=False)
        if (new.size, new.mtime_ns) != (old.size, old.mtime_ns):
            if new.size != old.size or file_sha256(Path(old.path)) != old.sha256:
                return None
        current.append(FileState(old.path, new.size, new.mtime_ns, old.sha256))
    return current


# ------------------------------------------------------------------------ entries
def entry_name(kind: str, key: Mapping) -> str:
    """Folder name of the entry for ``key`` (JSON-able: source paths and reader options)."""
    digest = hashlib.sha256(json.dumps({"kind": kind, **key}, sort_keys=True, default=str).encode()).hexdigest()
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(key.get("source", kind))).name)[:40]
    return f"{kind}-{label}-{digest[:20]}"


def _read_meta(folder: Path) -> dict:
    return json.loads((folder / META_FILE).read_text(encoding="utf-8"))


def _read_entry(folder: Path, meta: dict) -> SequenceSet:
    """Load an entry's arrays; any problem raises (callers treat that as a miss)."""
    frames = np.load(folder / FRAMES_FILE, mmap_mode="r", allow_pickle=False)
    with np.load(folder / META_ARRAYS_FILE, allow_pickle=False) as arrays:
        fields = {name: arrays[name] for name in arrays.files}
    dataset = SequenceSet.from_arrays({"frames": frames, **fields})
    if meta.get("num_sequences") != len(dataset) or meta.get("num_frames") != len(dataset.frames):
        raise ValueError("entry sizes disagree with meta.json")
    return dataset


def _write_entry(folder: Path, dataset: SequenceSet, meta: dict) -> None:
    """Build the entry beside its final place, then rename it in (the last writer wins)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(folder)
    temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        os.chmod(temporary, 0o777 & ~current_umask())  # mkdtemp makes 0700 folders; give entries the usual permissions
        arrays = dataset.to_arrays()
        frames = np.ascontiguousarray(arrays.pop("frames"), dtype=np.float32)
        for name, write in ((FRAMES_FILE, lambda h: np.save(h, frames, allow_pickle=False)),
                            (META_ARRAYS_FILE, lambda h: np.savez(h, **arrays)),
                            (META_FILE, lambda h: h.write(json.dumps(meta, indent=1).encode()))):
            with open(temporary / name, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
        _move_into_place(temporary, folder)
    finally:
        if temporary.exists():  # this writer lost the race (or failed): clean up after itself
            shutil.rmtree(temporary, ignore_errors=True)


def _move_into_place(temporary: Path, folder: Path, attempts: int = 5) -> None:
    for _ in range(attempts):
        try:
            os.rename(temporary, folder)
            return
        except OSError:
            if not folder.exists():
                raise
        # An older (or concurrently written) entry is in the way: move it aside, then delete it.
        retired = folder.with_name(f".{folder.name}.{os.getpid()}.{time.monotonic_ns()}.old.tmp")
        with contextlib.suppress(FileNotFoundError):
            os.rename(folder, retired)
            shutil.rmtree(retired, ignore_errors=True)


def _remove_stale_temporaries(folder: Path) -> None:
    now = time.time()
    for leftover in folder.parent.glob(f".{folder.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > _STALE_TEMP_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)


def _refresh_stats(folder: Path, meta: dict, states: Sequence[FileState]) -> None:
    """Record the new mtimes after a re-hash found the same content (best effort).

    Written in place without creating folders: the entry may just have been replaced.
    """
    meta = {**meta, "files": [vars(s) for s in states]}
    with contextlib.suppress(OSError), atomic_write(folder / META_FILE, "w", make_parents=False) as handle:
        handle.write(json.dumps(meta, indent=1))


# ----------------------------------------------------------------------- public
def load_or_build(
    kind: str,
    key: Mapping,
    list_files: Callable[[], Sequence[Path]],
    build: Callable[[], tuple[SequenceSet, dict]],
    cache_dir: str | os.PathLike | None = None,
) -> tuple[SequenceSet, dict]:
    """The cached dataset for ``key`` if its source files are unchanged, else ``build()`` and store it.

    ``list_files`` names every file the result depends on (it may parse an index);
    ``build`` returns the dataset and a JSON-able ``extra`` dict (e.g. skipped files)
    that is stored with it and returned on later hits as well.
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = folder / entry_name(kind, key)
    digest = reader_digest()
    hit = _lookup(folder, digest)
    if hit is not None:
        return hit

    states = [FileState.of(Path(p)) for p in list_files()]  # hashed before reading: a later edit is seen
    dataset, extra = build()
    meta = {
        "format_version": FORMAT_VERSION, "kind": kind, "key": dict(key), "reader_digest": digest,
        "content_sha256": _combined_digest(states), "files": [vars(s) for s in states],
        "num_sequences": len(dataset), "num_frames": int(len(dataset.frames)), "extra": extra,
    }
    try:
        _write_entry(folder, dataset, meta)
    except OSError as error:
        log.warning("could not write the dataset cache %s (%s); continuing without it", folder, error)
        return dataset, extra
    try:  # hand out the memory-mapped copy, as every later load will
        dataset = _read_entry(folder, meta)
    except (OSError, ValueError, KeyError) as error:
        log.warning("dataset cache entry %s unreadable right after writing (%s)", folder, error)
    return dataset, extra


def _lookup(folder: Path, digest: str) -> tuple[SequenceSet, dict] | None:
    if not folder.is_dir():
        return None
    try:
        meta = _read_meta(folder)
        if meta.get("format_version") != FORMAT_VERSION or meta.get("reader_digest") != digest:
            log.info("dataset cache %s was written by another reader version; rebuilding", folder.name)
            return None
        recorded = [FileState(**f) for f in meta["files"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("dataset cache entry %s is corrupt (%s); rebuilding", folder, error)
        return None
    current = _current_states(recorded)
    if current is None:
        log.info("source of %s changed; rebuilding the cache entry", folder.name)
        return None
    try:
        dataset = _read_entry(folder, meta)
    except (OSError, ValueError, KeyError, TypeError, EOFError) as error:
        log.warning("dataset cache entry %s is corrupt (%s); rebuilding", folder, error)
        return None
    if current != recorded:
        _refresh_stats(folder, meta, current)
    return dataset, meta.get("extra", {})
