"""Torch-facing pieces: a Dataset over a SequenceSet, padding collate, P×K batch sampler."""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from datasets.errors import UsageError
from augmentations.preprocess import DEFAULT_SETTINGS, prepare, resample_frames  # noqa: F401 (re-export)
from datasets.sequences import SequenceSet


class Draw(int):
    """A sample index drawn again within one batch: ``int`` for every use, plus ``occurrence``.

    A P×K batch repeats the members of a class smaller than K. Were the copies read with the
    same randomness they would be bit-identical, "positives" at distance 0 that teach nothing;
    :class:`SignDataset` folds ``occurrence`` into the item's seed so each copy is augmented
    differently. Being an ``int``, a batch of draws still indexes label arrays, pickles to
    DataLoader workers and compares equal to the plain index.
    """

    occurrence: int

    def __new__(cls, index: int, occurrence: int):
        draw = super().__new__(cls, index)
        draw.occurrence = int(occurrence)
        return draw

    def __reduce__(self):
        return Draw, (int(self), self.occurrence)

    def __repr__(self) -> str:
        return f"Draw({int(self)}, occurrence={self.occurrence})"


class SignDataset(Dataset):
    """Samples of a :class:`SequenceSet`, augmented then normalised, as ``(T, 54, 2)`` tensors.

    Randomness for item ``i`` in epoch ``e`` comes from ``default_rng([seed, e, i])``,
    so results do not depend on the number of workers or on the order items are read. A
    repeat of ``i`` within a batch (a :class:`Draw` with occurrence ``o > 0``) uses
    ``default_rng([seed, e, i, o])``: another augmentation, as reproducible as the first.
    """

    def __init__(self, sequences: SequenceSet, transform: Callable | None = None, normalization: str = "centered",
                 normalize_hands: bool = True, max_frames: int | None = None, resample_to: int | None = None,
                 seed: int = 0, canonical_handedness: bool = False, settings: dict | None = None):
        self.sequences = sequences
        self.transform = transform
        self.settings = dict(settings) if settings is not None else {
            **DEFAULT_SETTINGS, "body": normalization, "hands": normalize_hands, "max_frames": max_frames or 0,
            "resample_frames": resample_to or 0, "canonical_handedness": canonical_handedness}
        self.seed = seed
        self.epoch = 0

    # Attribute views of ``settings`` (kept in step with it).
    normalization = property(lambda self: self.settings["body"], lambda self, v: self.settings.__setitem__("body", v))
    normalize_hands = property(lambda self: self.settings["hands"], lambda self, v: self.settings.__setitem__("hands", v))
    max_frames = property(lambda self: self.settings["max_frames"],
                          lambda self, v: self.settings.__setitem__("max_frames", v or 0))
    resample_to = property(lambda self: self.settings["resample_frames"],
                           lambda self, v: self.settings.__setitem__("resample_frames", v or 0))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.sequences)

    def frames(self, index: int, rng: np.random.Generator | None = None) -> np.ndarray:
        return prepare(self.sequences.sequence(index), self.settings, self.transform, rng)

    def __getitem__(self, index: int):
        occurrence = getattr(index, "occurrence", 0)
        key = [self.seed, self.epoch, int(index)] + ([occurrence] if occurrence else [])
        rng = np.random.default_rng(key) if self.transform is not None else None
        return torch.from_numpy(np.ascontiguousarray(self.frames(index, rng))), int(self.sequences.labels[index])


def pad_batch(clips: list[torch.Tensor], multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack clips of different lengths: ``(B, T, 54, 2)`` and a mask, True = padded frame.

    ``T`` is the longest clip rounded up to a multiple of ``multiple``: a few fixed widths
    let the kernels of one width serve many batches, at the price of a little more padding.
    """
    lengths = torch.tensor([len(c) for c in clips])
    width = -(-int(lengths.max()) // multiple) * multiple
    batch = clips[0].new_zeros((len(clips), width, *clips[0].shape[1:]))
    for i, clip in enumerate(clips):
        batch[i, : len(clip)] = clip
    mask = torch.arange(batch.shape[1])[None, :] >= lengths[:, None]
    return batch, mask


class FrameCount:
    """Real and padded frames over the batches of a pass (an epoch, an embedding run).

    The padding share says how much of the compute went to padded frames. The sums of
    squared lengths are kept too, because attention costs grow with the square of a clip's
    length: ``models.count_flops_per_sample`` is a quadratic in the frame count, so with
    these sums a benchmark counts the exact multiply-adds of the real and the padded frames.
    """

    def __init__(self) -> None:
        self.clips = self.real = self.real_squared = self.padded = self.padded_squared = 0

    def add(self, padding_mask: torch.Tensor) -> None:
        """Count one batch from its ``(B, T)`` padding mask (True = padded frame)."""
        lengths = (~padding_mask).sum(dim=1).tolist()
        width = padding_mask.shape[1]
        self.clips += len(lengths)
        self.real += sum(lengths)
        self.real_squared += sum(t * t for t in lengths)
        self.padded += width * len(lengths)
        self.padded_squared += width * width * len(lengths)

    def metrics(self) -> dict:
        """Flat figures for an epoch's metrics (``padding_share`` 0 = no padded frame)."""
        share = 1 - self.real / self.padded if self.padded else 0.0
        return {"padding_share": share, "real_frames": self.real, "real_frames_squared": self.real_squared,
                "padded_frames": self.padded, "padded_frames_squared": self.padded_squared}


def collate(items, pad_multiple: int = 1):
    """``[(clip, label), ...]`` → ``(landmarks, padding_mask, labels)``, padded as :func:`pad_batch` says."""
    clips, labels = zip(*items)
    landmarks, mask = pad_batch(list(clips), pad_multiple)
    return landmarks, mask, torch.tensor(labels, dtype=torch.long)


class PKSampler(Sampler[list[int]]):
    """Batches of ``p`` classes × ``k`` samples, so every anchor has positives and negatives.

    A class with at least ``k`` samples gives ``k`` distinct ones. A smaller class gives
    all its members first (so none is left out while another is repeated), then repeats
    them in further shuffled rounds; each repeat is a :class:`Draw` carrying its round
    number, so :class:`SignDataset` augments it differently from the first copy. A batch
    never mixes in a class twice. ``num_batches`` defaults to one pass over the data.
    Batches depend only on (seed, epoch), so a resumed run draws the same ones.
    """

    def __init__(self, labels, p: int, k: int, num_batches: int | None = None, seed: int = 0):
        self.labels = np.asarray(labels)
        self.classes, counts = np.unique(self.labels, return_counts=True)
        usable = self.classes[counts >= 2]
        if k < 2:
            raise UsageError(f"P×K sampler: K must be at least 2 (got {k}) so that positives exist")
        if p < 2 or p > len(usable):
            raise UsageError(f"P×K sampler: P={p} classes per batch, but the data has {len(usable)} classes with "
                             f"at least 2 samples (P must be between 2 and that)")
        self.usable = usable
        self.p, self.k, self.seed, self.epoch = p, k, seed, 0
        self.num_batches = num_batches or max(1, len(self.labels) // (p * k))
        self.members = {c: np.flatnonzero(self.labels == c) for c in usable}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        for _ in range(self.num_batches):
            batch = []
            for c in rng.choice(self.usable, size=self.p, replace=False):
                members = self.members[c]
                if len(members) >= self.k:
                    batch.extend(rng.choice(members, size=self.k, replace=False).tolist())
                else:
                    batch.extend(self._rounds(members, rng))
            yield batch

    def _rounds(self, members: np.ndarray, rng: np.random.Generator) -> list[int]:
        """``k`` draws from a class smaller than ``k``: shuffled rounds over all members, repeats marked."""
        rounds = -(-self.k // len(members))
        order = np.concatenate([rng.permutation(members) for _ in range(rounds)])[: self.k]
        occurrence = np.arange(self.k) // len(members)
        return [int(i) if o == 0 else Draw(int(i), int(o)) for i, o in zip(order, occurrence)]
