"""Folders of landmark files plus an index, read directly.

A clip's file is ``<video_id>`` with any suffix :mod:`datasets.formats` reads (``.npy``,
``.pose``, ``.parquet``, ``.json``, or an OpenPose folder ``<video_id>/``), or the path an
index gives (the Kaggle ISLR ``train.csv`` does).
"""
from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datasets import formats, layout
from datasets.errors import DataError
from datasets.sequences import SequenceSet

log = logging.getLogger(__name__)


@dataclass
class IndexEntry:
    video_id: str
    gloss: str
    signer_id: str = ""
    split: str = ""
    frame_start: int = 1   # 1-based, as WLASL
    frame_end: int = -1    # inclusive; -1 = to the end
    path: str = ""         # the clip's file when the index names it (Kaggle ``path``), else found by id
    frame_width: int = 0   # pixels of the video, when known: makes OpenPose/MMPose pixels image-relative
    frame_height: int = 0

    @property
    def frame_size(self) -> tuple[int, int] | None:
        return (self.frame_width, self.frame_height) if self.frame_width > 0 and self.frame_height > 0 else None


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
                    width, height = int(inst.get("frame_width", 0)), int(inst.get("frame_height", 0))
                except (TypeError, ValueError):
                    raise DataError(f"{where}: frame_start/frame_end/frame_width/frame_height must be integers") from None
                entries.append(IndexEntry(_check_video_id(str(inst["video_id"]), where), str(item["gloss"]),
                                          str(inst.get("signer_id", "")), str(inst.get("split", "")), start, end,
                                          frame_width=width, frame_height=height))
        return entries
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    if all(c in columns for c in KAGGLE_INDEX_COLUMNS) and "video_id" not in columns:
        return _read_kaggle_index(path, reader)
    for required in ("video_id", "gloss"):
        if required not in columns:
            raise DataError(f"{path}: missing column {required!r} (have {', '.join(columns) or 'none'}); "
                            f"a Kaggle ISLR index has {', '.join(KAGGLE_INDEX_COLUMNS)}")
    for r, row in enumerate(reader, start=2):
        where = f"{path}: row {r}"
        if not row["gloss"]:
            raise DataError(f"{where}, column gloss: empty gloss")
        try:
            start = int(row.get("frame_start") or 1)
            end = int(row.get("frame_end") or -1)
            width, height = int(row.get("frame_width") or 0), int(row.get("frame_height") or 0)
        except ValueError:
            raise DataError(f"{where}: frame_start/frame_end/frame_width/frame_height must be integers") from None
        entries.append(IndexEntry(_check_video_id(row["video_id"] or "", where), row["gloss"],
                                  row.get("signer_id") or "", row.get("split") or "", start, end,
                                  frame_width=width, frame_height=height))
    return entries


KAGGLE_INDEX_COLUMNS = ("path", "participant_id", "sequence_id", "sign")


def _read_kaggle_index(path: Path, reader: csv.DictReader) -> list[IndexEntry]:
    """Kaggle ISLR ``train.csv``: ``sequence_id`` → video id, ``sign`` → gloss,
    ``participant_id`` → signer; ``path`` is relative to the index's folder."""
    entries = []
    for r, row in enumerate(reader, start=2):
        where = f"{path}: row {r}"
        for column in KAGGLE_INDEX_COLUMNS:
            if not row[column]:
                raise DataError(f"{where}, column {column}: empty")
        clip = Path(row["path"])
        if clip.is_absolute() or ".." in clip.parts:
            raise DataError(f"{where}, column path: {row['path']!r} must be relative to the index's folder")
        entries.append(IndexEntry(_check_video_id(row["sequence_id"], where), row["sign"], row["participant_id"],
                                  path=str(path.parent / clip)))
    return entries


def landmark_file(folder: Path, entry: IndexEntry) -> Path:
    """Where ``entry``'s clip is: the index's own path, else ``<video_id>.<any format>`` in ``folder``."""
    return Path(entry.path) if entry.path else formats.locate(folder, entry.video_id)


def load_raw_landmarks(path: str | os.PathLike, frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """Load one clip of any supported format as raw ``(T, 150)``, refusing bad files with a clear reason."""
    return formats.read_clip(path, frame_size).raw


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
            raw = trim(load_raw_landmarks(landmark_file(landmarks_dir, entry), entry.frame_size),
                       entry.frame_start, entry.frame_end)
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
