"""In-memory form of a sign dataset: flat arrays, never per-frame Python objects."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from datasets import layout


def string_column(values, n: int, name: str, of: str = "sequences") -> np.ndarray:
    """``values`` as an ``(n,)`` string array (None → ""), or all "" when ``values`` is None;
    a column of another length is refused naming ``name`` and what it should count (``of``)."""
    if values is None:
        return np.full(n, "", dtype=str)
    out = np.asarray([("" if v is None else str(v)) for v in values], dtype=str).reshape(-1)
    if out.shape != (n,):
        raise ValueError(f"{name} has {out.shape[0]} entries for {n} {of}")
    return out


@dataclass
class SequenceSet:
    """Sequences of SPOTER points stored back to back.

    ``frames`` holds every frame of every sample, ``(F, 54, 2)`` float32 in image
    coordinates with 0 for undetected points; sample ``i`` is
    ``frames[offsets[i]:offsets[i + 1]]``. Labels index ``label_names``.
    """

    frames: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    label_names: list[str]
    video_ids: np.ndarray
    signer_ids: np.ndarray
    splits: np.ndarray = field(default=None)

    def __post_init__(self):
        n = len(self.offsets) - 1
        self.frames = np.ascontiguousarray(self.frames, dtype=np.float32)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.video_ids = string_column(self.video_ids, n, "video_ids")
        self.signer_ids = string_column(self.signer_ids, n, "signer_ids")
        self.splits = string_column(self.splits, n, "splits")
        self.label_names = [str(name) for name in self.label_names]
        if self.frames.ndim != 3 or self.frames.shape[1:] != (layout.NUM_POINTS, layout.NUM_COORDS):
            raise ValueError(f"frames must be (F, {layout.NUM_POINTS}, 2), got {self.frames.shape}")
        if n < 0 or self.offsets[0] != 0 or self.offsets[-1] != len(self.frames) or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must start at 0, never decrease and end at the number of frames")
        if self.labels.shape != (n,):
            raise ValueError(f"{self.labels.shape[0]} labels for {n} sequences")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.label_names)):
            raise ValueError("a label does not index label_names")

    @classmethod
    def from_sequences(
        cls,
        sequences: Sequence[np.ndarray],
        labels: Sequence[int],
        label_names: Sequence[str],
        video_ids=None,
        signer_ids=None,
        splits=None,
    ) -> "SequenceSet":
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        empty = np.zeros((0, layout.NUM_POINTS, layout.NUM_COORDS), np.float32)
        frames = np.concatenate([np.asarray(s, np.float32) for s in sequences]) if len(sequences) else empty
        return cls(frames, offsets, np.asarray(labels, np.int64), list(label_names), video_ids, signer_ids, splits)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def sequence(self, index: int) -> np.ndarray:
        """Frames of one sample, a view ``(T, 54, 2)``."""
        return self.frames[self.offsets[index]: self.offsets[index + 1]]

    def subset(self, indices) -> "SequenceSet":
        """Samples at ``indices`` (order kept); the label vocabulary is unchanged."""
        indices = np.asarray(indices)
        if indices.dtype == bool:
            if indices.shape != (len(self),):
                raise IndexError(f"boolean mask of shape {indices.shape} for {len(self)} sequences")
            indices = np.flatnonzero(indices)
        else:
            indices = indices.astype(np.int64).reshape(-1)
            if indices.size and (indices.min() < -len(self) or indices.max() >= len(self)):
                raise IndexError(f"sequence index out of range for {len(self)} sequences")
            indices = np.where(indices < 0, indices + len(self), indices)
        starts, stops = self.offsets[indices], self.offsets[indices + 1]
        lengths = stops - starts
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        # Gather every frame index in one go: for each output frame, its source frame.
        frame_index = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return SequenceSet(
            self.frames[frame_index], offsets, self.labels[indices], list(self.label_names),
            self.video_ids[indices], self.signer_ids[indices], self.splits[indices],
        )

    def split(self, name: str) -> "SequenceSet":
        return self.subset(np.flatnonzero(self.splits == name))

    def with_label_names(self, label_names: Sequence[str]) -> "SequenceSet":
        """Re-index labels into another vocabulary (e.g. a training set's); unknown glosses raise."""
        position = {name: i for i, name in enumerate(label_names)}
        missing = sorted({self.label_names[l] for l in np.unique(self.labels)} - position.keys())
        if missing:
            raise ValueError(f"glosses not in the target vocabulary: {', '.join(missing[:10])}")
        remap = np.asarray([position.get(name, -1) for name in self.label_names], dtype=np.int64)
        return SequenceSet(self.frames, self.offsets, remap[self.labels], list(label_names),
                           self.video_ids, self.signer_ids, self.splits)

    def to_arrays(self) -> dict:
        """Plain arrays for ``np.savez`` (no object arrays, loadable with ``allow_pickle=False``)."""
        return {
            "frames": self.frames, "offsets": self.offsets, "labels": self.labels,
            "label_names": np.asarray(self.label_names, dtype=str), "video_ids": self.video_ids,
            "signer_ids": self.signer_ids, "splits": self.splits,
        }

    @classmethod
    def from_arrays(cls, arrays) -> "SequenceSet":
        return cls(arrays["frames"], arrays["offsets"], arrays["labels"], list(arrays["label_names"]),
                   arrays["video_ids"], arrays["signer_ids"], arrays["splits"])


def concatenate(sets: Sequence[SequenceSet]) -> SequenceSet:
    """Join sets, merging vocabularies by gloss name (first set's order first)."""
    names: list[str] = []
    for s in sets:
        names.extend(n for n in s.label_names if n not in names)
    sets = [s.with_label_names(names) if s.label_names != names else s for s in sets]
    lengths = np.concatenate([s.lengths for s in sets])
    return SequenceSet(
        np.concatenate([s.frames for s in sets]), np.concatenate([[0], np.cumsum(lengths)]),
        np.concatenate([s.labels for s in sets]), names,
        np.concatenate([s.video_ids for s in sets]), np.concatenate([s.signer_ids for s in sets]),
        np.concatenate([s.splits for s in sets]),
    )
