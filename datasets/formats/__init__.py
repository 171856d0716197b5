"""Landmark files of every supported format → the raw layout, found and read in one place.

A clip may be stored as

* ``<id>.npy`` – this project's own raw ``(T, 150)`` float32 array;
* ``<id>.pose`` – a pose-format file (MediaPipe Holistic or OpenPose components);
* ``<id>.parquet`` – one clip of the Kaggle ISLR (asl-signs) layout;
* ``<id>.json`` – MMPose predictions (COCO-WholeBody 133 points, or COCO 17 body points);
* ``<id>/`` – an OpenPose ``--write_json`` folder, one ``*_keypoints.json`` per frame.

Every reader returns a :class:`Clip` whose ``raw`` is the project's raw layout (image-relative
x, y; 0 = not detected), so nothing downstream knows which format a clip came from. Point
mappings live in :mod:`datasets.layout`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets import layout
from datasets.errors import DataError

NPY, POSE, PARQUET, JSON = ".npy", ".pose", ".parquet", ".json"
FILE_SUFFIXES = (NPY, POSE, PARQUET, JSON)  # looked for in this order beside an id
OPENPOSE_FRAME_SUFFIX = "_keypoints.json"
# Landmarks are image-relative (about 0..1, a little beyond for points off the picture). Far
# larger values are not landmarks, and from ~1e19 on their squares overflow float32 in
# normalisation (NaN embeddings), so files holding them are refused.
MAX_ABS_COORDINATE = 1e6


@dataclass
class Clip:
    """One clip in the raw layout, with what its file said about it."""

    raw: np.ndarray                 # (T, 150) float32, image-relative, 0 = not detected
    fps: float | None = None        # None: the format does not record it
    note: str = ""                  # e.g. which person of a multi-person file was kept


def is_openpose_folder(path: Path) -> bool:
    """A folder holding OpenPose per-frame ``*_keypoints.json`` files."""
    return path.is_dir() and any(p.name.endswith(OPENPOSE_FRAME_SUFFIX) for p in path.iterdir())


def is_landmark_path(path: Path) -> bool:
    """Whether ``path`` looks like a clip this package reads (by suffix, or an OpenPose folder)."""
    return path.suffix.lower() in FILE_SUFFIXES if path.is_file() else is_openpose_folder(path)


def locate(folder: Path, video_id: str) -> Path:
    """The landmark file (or OpenPose folder) of ``video_id`` in ``folder``."""
    for suffix in FILE_SUFFIXES:
        candidate = folder / f"{video_id}{suffix}"
        if candidate.is_file():
            return candidate
    if (folder / video_id).is_dir():
        return folder / video_id
    return folder / f"{video_id}{NPY}"  # reported as "file not found" by the reader


def source_files(path: Path) -> list[Path]:
    """The files a clip's content depends on (an OpenPose folder: its frame files)."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.name.endswith(OPENPOSE_FRAME_SUFFIX))
    return [path]


def read_clip(path: str | os.PathLike, frame_size: tuple[int, int] | None = None) -> Clip:
    """Read any supported clip; raises :class:`DataError` naming the file and what is wrong.

    ``frame_size`` (width, height) converts the pixel coordinates of OpenPose/MMPose JSON to
    image-relative ones; ``.pose`` files carry their own size, the other formats are already
    image-relative.
    """
    from datasets.formats import keypoints_json, kaggle, npy, pose_file

    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        if not is_openpose_folder(path):
            raise DataError(f"{path}: a folder, but it holds no OpenPose *{OPENPOSE_FRAME_SUFFIX} frame files")
        clip = keypoints_json.read_openpose_folder(path, frame_size)
    elif not path.exists():
        raise DataError(f"{path}: file not found")
    elif suffix == NPY:
        clip = Clip(npy.read_npy(path))
    elif suffix == POSE:
        clip = pose_file.read_pose(path)
    elif suffix == PARQUET:
        clip = kaggle.read_parquet_clip(path)
    elif suffix == JSON:
        clip = keypoints_json.read_json_clip(path, frame_size)
    else:
        raise DataError(f"{path}: unknown landmark format {suffix or '(no suffix)'!r}; expected "
                        f"{', '.join(FILE_SUFFIXES)} or an OpenPose folder")
    check_raw(clip.raw, path)
    return clip


def check_raw(raw: np.ndarray, path: Path) -> None:
    """The checks every clip passes, whatever its format."""
    if raw.ndim != 2 or raw.shape[1] != layout.RAW_FEATURES:
        raise DataError(f"{path}: expected shape (frames, {layout.RAW_FEATURES}), got {raw.shape}")
    if raw.shape[0] == 0:
        raise DataError(f"{path}: zero frames")
    if not np.isfinite(raw).all():
        raise DataError(f"{path}: NaN or infinite values")
    if np.abs(raw).max() > MAX_ABS_COORDINATE:
        raise DataError(f"{path}: coordinates up to {np.abs(raw).max():.3g}, not image-relative landmarks "
                        f"(|value| <= {MAX_ABS_COORDINATE:g} expected)")
