"""SPOTER CSVs → a landmark folder (``<video_id>.npy`` raw ``(T, 150)`` + ``index.csv``).

So that a dataset published only as SPOTER CSVs (WLASL100, LSA64) can go through every
tool that takes landmark folders (``create``, the folder loaders, the viewers).

The raw layout holds more points than SPOTER's 54: every raw point without a SPOTER
counterpart (mouth, eye corners, hips, legs, ...) is written as 0, i.e. "not detected",
which :func:`datasets.layout.raw_to_spoter` never reads. The one loss is the **neck**:
the raw layout has none, so it is recomputed from the shoulders when the folder is read.
For files this project wrote that is exact; published files from another pose estimator
have their own neck, and the report counts the frames where it differs.

Names: a row's ``video_id`` column when present, else ``<csv stem>_<row number>``
(rows counted from 0). Split: the ``split`` column when present, else ``train``, ``val``
or ``test`` when that word is part of the file name (``WLASL100_train_25fps.csv``), else
empty. Glosses come from ``label_name`` / ``id_to_label.json`` as
:func:`datasets.spoter_csv.read_spoter_csv` finds them.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datasets import layout
from datasets.atomic import atomic_save_npy, atomic_write
from datasets.errors import DataError, UsageError
from datasets.landmark_folder import _check_video_id
from datasets.spoter_csv import read_spoter_csv

log = logging.getLogger(__name__)

INDEX_COLUMNS = ("video_id", "gloss", "signer_id", "split")
NECK_TOLERANCE = 1e-6  # a published neck further than this from the shoulders' midpoint is "changed"
_SPLIT_WORDS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                "dev": "val", "test": "test", "testing": "test"}


def spoter_to_raw(points: np.ndarray) -> np.ndarray:
    """SPOTER points ``(..., 54, 2)`` → raw frames ``(..., 150)``; points SPOTER lacks are 0."""
    points = np.asarray(points, dtype=np.float32)
    if points.shape[-2:] != (layout.NUM_POINTS, layout.NUM_COORDS):
        raise ValueError(f"expected SPOTER points (..., {layout.NUM_POINTS}, 2), got shape {points.shape}")
    copied = layout.RAW_SOURCE_INDEX >= 0  # every point but the derived neck
    raw = np.zeros((*points.shape[:-2], layout.NUM_RAW_POINTS, layout.NUM_COORDS), np.float32)
    raw[..., layout.RAW_SOURCE_INDEX[copied], :] = points[..., copied, :]
    return raw.reshape(*points.shape[:-2], layout.RAW_FEATURES)


def split_from_file_name(path: Path) -> str:
    """``train``/``val``/``test`` when one of those words is in the file name, else ``""``."""
    for word in re.split(r"[^a-z]+", path.stem.lower()):
        if word in _SPLIT_WORDS:
            return _SPLIT_WORDS[word]
    return ""


@dataclass
class ImportReport:
    output_folder: str
    index_file: str
    samples: int = 0
    frames: int = 0
    files: dict[str, int] = field(default_factory=dict)  # csv path -> samples
    neck_changed_frames: int = 0  # frames whose published neck is not the shoulders' midpoint


def import_spoter_csvs(csv_paths, output_folder: str | os.PathLike) -> ImportReport:
    """Write every sample of ``csv_paths`` as ``<video_id>.npy`` plus one ``index.csv``.

    Refuses (before writing anything) a video id that is not a plain file name or that
    two rows share. Every file is written atomically, so a rerun simply redoes the import.
    """
    paths = [Path(p) for p in csv_paths]
    if not paths:
        raise UsageError("no SPOTER CSV given")
    for path in paths:
        if not path.is_file():
            raise UsageError(f"SPOTER CSV {path} does not exist or is not a file")
    output = Path(output_folder)
    if output.exists() and not output.is_dir():
        raise UsageError(f"output folder {output} exists and is not a folder")

    loaded, rows, where = [], [], {}
    for path in paths:
        dataset = read_spoter_csv(path)
        file_split = split_from_file_name(path)
        for i in range(len(dataset)):
            video_id = dataset.video_ids[i] or f"{path.stem}_{i}"
            place = f"{path}: row {i + 2}"
            _check_video_id(video_id, place)
            if video_id in where:
                raise DataError(f"{place}: video_id {video_id!r} already used by {where[video_id]}")
            where[video_id] = place
            rows.append((video_id, dataset.label_names[dataset.labels[i]], dataset.signer_ids[i],
                         dataset.splits[i] or file_split))
        loaded.append((path, dataset))

    report = ImportReport(str(output), str(output / "index.csv"))
    output.mkdir(parents=True, exist_ok=True)
    video_ids = iter(rows)
    for path, dataset in loaded:
        raw = spoter_to_raw(dataset.frames)  # (F, 150), every sample of the file at once
        neck = dataset.frames[:, layout.NECK]
        rebuilt = layout.raw_to_spoter(raw)[:, layout.NECK]
        report.neck_changed_frames += int(np.count_nonzero(np.abs(neck - rebuilt).max(axis=-1) > NECK_TOLERANCE))
        for i in range(len(dataset)):
            atomic_save_npy(output / f"{next(video_ids)[0]}.npy", raw[dataset.offsets[i]:dataset.offsets[i + 1]])
        report.files[str(path)] = len(dataset)
        report.samples += len(dataset)
        report.frames += len(dataset.frames)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    writer.writerows(rows)
    with atomic_write(report.index_file, "w") as handle:
        handle.write(buffer.getvalue())
    if report.neck_changed_frames:
        log.warning("%d of %d frames had a neck that is not the shoulders' midpoint; the landmark folder "
                    "recomputes it from the shoulders", report.neck_changed_frames, report.frames)
    return report


__all__ = ["ImportReport", "import_spoter_csvs", "spoter_to_raw", "split_from_file_name"]
