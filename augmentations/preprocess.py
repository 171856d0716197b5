"""What happens to a clip between the file and the model, in one place.

Training, evaluation, prediction, export metadata and the web page all follow the
same steps, described by a plain ``settings`` dict stored in every checkpoint:

1. frame selection: resample to ``resample_frames`` frames, or cap at ``max_frames``;
2. optional handedness canonicalisation (``canonical_handedness``): a clip whose left
   hand is seen in more frames than its right is mirrored, so the dominant hand is
   always in the right-hand block (signers differ in handedness);
3. (training only) augmentation;
4. normalisation (``body`` variant, per-hand boxes when ``hands``).
"""
from __future__ import annotations

import numpy as np

from augmentations.normalization import normalize
from augmentations.transforms import Mirror
from datasets import layout

DEFAULT_SETTINGS = {"body": "centered", "hands": True, "resample_frames": 0, "max_frames": 256,
                    "canonical_handedness": False}


def resample_frames(num_frames: int, target: int) -> np.ndarray:
    """Indices of ``target`` frames spread evenly over ``num_frames`` (repeats when stretching)."""
    return np.round(np.linspace(0, num_frames - 1, target)).astype(np.int64)


def select_frames(points: np.ndarray, settings: dict) -> np.ndarray:
    length = len(points)
    if settings.get("resample_frames"):
        return points[resample_frames(length, settings["resample_frames"])]
    cap = settings.get("max_frames")
    if cap and length > cap:
        return points[resample_frames(length, cap)]
    return points


def left_hand_dominant(points: np.ndarray) -> bool:
    """True when the left-hand block is detected in more frames than the right-hand block."""
    seen = ~layout.missing_mask(points)  # (T, 54): point detected
    left = seen[:, layout.LEFT_HAND_SLICE].any(axis=1).sum()
    right = seen[:, layout.RIGHT_HAND_SLICE].any(axis=1).sum()
    return bool(left > right)


def canonicalize_handedness(points: np.ndarray) -> np.ndarray:
    if not left_hand_dominant(points):
        return points
    return Mirror()(points)


def prepare(points: np.ndarray, settings: dict | None = None, transform=None, rng=None) -> np.ndarray:
    """Raw-coordinate ``(T, 54, 2)`` clip → model input ``(T', 54, 2)`` as ``settings`` say."""
    settings = {**DEFAULT_SETTINGS, **(settings or {})}
    points = select_frames(points, settings)
    if settings.get("canonical_handedness"):
        points = canonicalize_handedness(points)
    if transform is not None and rng is not None:
        points = transform(points, rng)
    return normalize(points, settings["body"], settings["hands"])
