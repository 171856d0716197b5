"""Folders of ``<video_id>.npy`` raw landmark files plus an index, read directly."""
from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datasets import layout
from datasets.errors import DataError
from datasets.sequences import SequenceSet

log = logging.getLogger(__name__)
_NPY_MAGIC = b"\x93NUMPY"
# Landmarks are image-relative (about 0..1, a little beyond for points off the picture). Far
# larger values are not landmarks, and from ~1e19 on their squares overflow float32 in
# normalisation (NaN embeddings), so files holding them are refused.
MAX_ABS_COORDINATE = 1e6


@dataclass
class IndexEntry:
    video_id: str
    gloss: str
    signer_id: str = ""
    split: str = ""
    frame_start: int = 1   # 1-based, as WLASL
    frame_end: int = -1    # inclusive; -1 = to the end


def _check_video_id(video_id: str, where: str) -> str:
    """Refuse ids that would read outside the landmark folder."""
    if not video_id or video_id in (".", "..") or "/" in video_id or "\\" in video_id or "\0" in video_id:
        raise DataError(f"{where}: video_id {video_id!r} is not a plain file name (path components are refused)")
    return video_id


def read_index(path: str | os.PathLike) -> list[IndexEntry]:
    """Read a WLASL-style JSON index or a CSV ``video_id,gloss[,signer_id][,split]``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheet exports start with a BOM
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read index ({error})") from None
    entries = []
    if path.suffix.lower() == ".json":
        try:
            glosses = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: invalid JSON ({error})") from None
        if not isinstance(glosses, list):
            raise DataError(f"{path}: expected a list of {{gloss, instances}} objects")
        for g, item in enumerate(glosses):
            if not isinstance(item, dict) or "gloss" not in item or not isinstance(item.get("instances"), list):
                raise DataError(f"{path}: entry {g}: expected {{gloss, instances: [...]}}")
            for k, inst in enumerate(item["instances"]):
                where = f"{path}: gloss {item['gloss']!r} instance {k}"
                if not isinstance(inst, dict) or "video_id" not in inst:
                    raise DataError(f"{where}: missing video_id")
                try:
                    start, end = int(inst.get("frame_start", 1)), int(inst.get("frame_end", -1))
                except (TypeError, ValueError):
                    raise DataError(f"{where}: frame_start/frame_end must be integers") from None
                entries.append(IndexEntry(_check_video_id(str(inst["video_id"]), where), str(item["gloss"]),
                                          str(inst.get("signer_id", "")), str(inst.get("split", "")), start, end))
        return entries
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    for required in ("video_id", "gloss"):
        if required not in columns:
            raise DataError(f"{path}: missing column {required!r} (have {', '.join(columns) or 'none'})")
    for r, row in enumerate(reader, start=2):
        where = f"{path}: row {r}"
        if not row["gloss"]:
            raise DataError(f"{where}, column gloss: empty gloss")
        try:
            start = int(row.get("frame_start") or 1)
            end = int(row.get("frame_end") or -1)
        except ValueError:
            raise DataError(f"{where}: frame_start/frame_end must be integers") from None
        entries.append(IndexEntry(_check_video_id(row["video_id"] or "", where), row["gloss"],
                                  row.get("signer_id") or "", row.get("split") or "", start, end))
    return entries


def load_raw_landmarks(path: str | os.PathLike) -> np.ndarray:
    """Load one ``(T, 150)`` raw landmark file, refusing anything else with a clear reason."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(_NPY_MAGIC))
        # The magic check keeps np.load from returning an NpzFile or reporting a text file as a pickle.
        array = np.load(path, allow_pickle=False) if magic == _NPY_MAGIC else None
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except ValueError as error:
        reason = "holds Python objects (pickles are refused)" if "pickle" in str(error) else f"not a valid .npy ({error})"
        raise DataError(f"{path}: {reason}") from None
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: not a readable .npy file ({error})") from None
    if array is None:
        raise DataError(f"{path}: not a .npy file")
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise DataError(f"{path}: expected numeric landmarks, got dtype {getattr(array, 'dtype', type(array))}")
    if array.ndim != 2 or array.shape[1] != layout.RAW_FEATURES:
        raise DataError(f"{path}: expected shape (frames, {layout.RAW_FEATURES}), got {array.shape}")
    if array.shape[0] == 0:
        raise DataError(f"{path}: zero frames")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise DataError(f"{path}: NaN or infinite values")
    if np.abs(array).max() > MAX_ABS_COORDINATE:
        raise DataError(f"{path}: coordinates up to {np.abs(array).max():.3g}, not image-relative landmarks "
                        f"(|value| <= {MAX_ABS_COORDINATE:g} expected)")
    return array


def trim(raw: np.ndarray, frame_start: int, frame_end: int) -> np.ndarray:
    """Apply a WLASL frame range (1-based, inclusive, -1 = last frame)."""
    start = max(frame_start, 1) - 1
    stop = len(raw) if frame_end is None or frame_end < 0 else min(frame_end, len(raw))
    return raw[start:stop]


@dataclass
class FolderLoadReport:
    loaded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (video_id, reason)


def read_landmark_folder(
    landmarks_dir: str | os.PathLike,
    index: str | os.PathLike | list[IndexEntry],
    split: str | None = None,
    label_names: list[str] | None = None,
    progress: bool = False,
) -> tuple[SequenceSet, FolderLoadReport]:
    """Load the samples an index names; unreadable files are skipped and reported, never fatal."""
    landmarks_dir = Path(landmarks_dir)
    entries = read_index(index) if not isinstance(index, list) else index
    if split is not None:
        entries = [e for e in entries if e.split == split]
    names = list(label_names) if label_names is not None else sorted({e.gloss for e in entries})
    position = {n: i for i, n in enumerate(names)}
    report = FolderLoadReport()
    kept, sequences = [], []
    for entry in tqdm(entries, desc=f"loading {landmarks_dir.name}", disable=not progress, unit="file"):
        if entry.gloss not in position:
            report.skipped.append((entry.video_id, f"gloss {entry.gloss!r} not in the vocabulary"))
            continue
        try:
            raw = trim(load_raw_landmarks(landmarks_dir / f"{entry.video_id}.npy"), entry.frame_start, entry.frame_end)
            if len(raw) == 0:
                raise DataError(f"{entry.video_id}: frame range {entry.frame_start}..{entry.frame_end} is empty")
        except DataError as error:
            report.skipped.append((entry.video_id, str(error)))
            continue
        sequences.append(layout.raw_to_spoter(raw))
        kept.append(entry)
    report.loaded = len(kept)
    for video_id, reason in report.skipped:
        log.warning("skipped %s: %s", video_id, reason)
    dataset = SequenceSet.from_sequences(
        sequences, [position[e.gloss] for e in kept], names,
        video_ids=[e.video_id for e in kept], signer_ids=[e.signer_id for e in kept], splits=[e.split for e in kept],
    )
    return dataset, report
