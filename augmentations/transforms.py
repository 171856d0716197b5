"""Seeded, vectorised augmentations of ``(..., 54, 2)`` point sequences in image coordinates.

Each transform is a callable ``t(points, rng) -> points`` drawing its randomness
from the ``numpy.random.Generator`` it is given (never global state), applying one
transformation to every frame at once, and keeping undetected points (0, 0) as
they are. They run on raw image coordinates, before normalisation, as in SPOTER.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from datasets import layout

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]
IMAGE_CENTER = np.array([0.5, 0.5], dtype=np.float32)


def _keep_missing(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    missing = layout.missing_mask(old)
    return np.where(missing[..., None], np.float32(0), new).astype(np.float32)


def _rotation(angle_rad: float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s], [s, c]], dtype=np.float32)


@dataclass
class Rotate:
    """In-plane rotation of the whole picture about its centre."""
    max_degrees: float = 13.0

    def __call__(self, points, rng):
        angle = np.deg2rad(rng.uniform(-self.max_degrees, self.max_degrees))
        rotated = (points - IMAGE_CENTER) @ _rotation(angle).T + IMAGE_CENTER
        return _keep_missing(rotated, points)


def _homography(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """3x3 projective map taking 4 source corners to 4 target corners."""
    rows = []
    for (x, y), (u, v) in zip(source, target):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    h = np.linalg.solve(np.asarray(rows, np.float64), target.reshape(-1).astype(np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def _apply_homography(points, matrix):
    homogeneous = np.concatenate([points, np.ones_like(points[..., :1])], axis=-1) @ matrix.T
    return (homogeneous[..., :2] / homogeneous[..., 2:]).astype(np.float32)


_UNIT_SQUARE = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float64)


@dataclass
class Perspective:
    """Narrows the top of the picture by up to ``max_ratio`` on each side (camera tilt)."""
    max_ratio: float = 0.1

    def __call__(self, points, rng):
        left, right = rng.uniform(0, self.max_ratio, size=2)
        target = np.array([[left, 0], [1 - right, 0], [0, 1], [1, 1]])
        return _keep_missing(_apply_homography(points, _homography(_UNIT_SQUARE, target)), points)


@dataclass
class Squeeze:
    """Squeezes the picture horizontally by up to ``max_ratio`` from each side (narrower signer)."""
    max_ratio: float = 0.15

    def __call__(self, points, rng):
        left, right = rng.uniform(0, self.max_ratio, size=2)
        squeezed = points.copy()
        squeezed[..., 0] = left + points[..., 0] * (1 - left - right)
        return _keep_missing(squeezed, points)


# Each arm joint with the points that move when it turns (the rest of the arm and its hand).
_ARM_CHAINS = {
    side: [
        (layout.point_index(f"{side}Shoulder"),
         [layout.point_index(f"{side}Elbow"), layout.point_index(f"{side}Wrist"), *range(hand.start, hand.stop)]),
        (layout.point_index(f"{side}Elbow"), [layout.point_index(f"{side}Wrist"), *range(hand.start, hand.stop)]),
    ]
    for side, hand in (("left", layout.LEFT_HAND_SLICE), ("right", layout.RIGHT_HAND_SLICE))
}


@dataclass
class ArmJointRotate:
    """Turns each shoulder and elbow joint by a small angle with probability ``probability``."""
    probability: float = 0.3
    max_degrees: float = 4.0

    def __call__(self, points, rng):
        out = points.copy()
        for chain in _ARM_CHAINS.values():
            for joint, children in chain:
                if rng.random() >= self.probability:
                    continue
                rotation = _rotation(np.deg2rad(rng.uniform(-self.max_degrees, self.max_degrees)))
                origin = out[..., joint:joint + 1, :]
                present = ~layout.missing_mask(points[..., joint:joint + 1, :])[..., None]
                turned = (out[..., children, :] - origin) @ rotation.T + origin
                out[..., children, :] = np.where(present, turned, out[..., children, :])
        return _keep_missing(out, points)


@dataclass
class GaussianNoise:
    """Detector jitter on every detected point."""
    mean: float = 0.0
    std: float = 0.001

    def __call__(self, points, rng):
        noise = rng.normal(self.mean, self.std, size=points.shape).astype(np.float32)
        return _keep_missing(points + noise, points)


@dataclass
class Mirror:
    """Horizontal flip that also swaps left/right body points and hands (other handedness)."""

    def __call__(self, points, rng=None):
        flipped = points[..., layout.MIRROR_PERMUTATION, :].copy()
        flipped[..., 0] = 1.0 - flipped[..., 0]
        return _keep_missing(flipped, points[..., layout.MIRROR_PERMUTATION, :])


@dataclass
class TimeWarp:
    """Re-times the clip within its own length: another person's speed and rhythm for the same sign.

    The new frame ``j`` shows the original moment ``tau(j)``: a random speed change about the
    clip's centre (factor up to ``1 +- max_speed``; moments beyond the clip hold its first or
    last frame) times a smooth random warp ``u + b sin(pi u)`` (``|b| <= max_warp``, kept below
    1/pi so time never runs backwards). Between two frames each point is interpolated;
    where it is undetected in either of them it is taken from the nearer one instead, so
    a missing hand stays missing rather than sliding towards (0, 0).
    """
    max_speed: float = 0.2
    max_warp: float = 0.2

    def __call__(self, points, rng):
        frames = points.shape[-3]
        if frames < 2:
            return points
        u = np.linspace(0.0, 1.0, frames)
        bend = rng.uniform(-1, 1) * min(self.max_warp, 0.99 / np.pi)
        speed = 1.0 + rng.uniform(-self.max_speed, self.max_speed)
        tau = (frames - 1) * (0.5 + speed * (u + bend * np.sin(np.pi * u) - 0.5))
        tau = np.clip(tau, 0, frames - 1)
        before = np.minimum(np.floor(tau).astype(np.int64), frames - 2)
        weight = (tau - before).astype(np.float32)[:, None, None]      # (T, 1, 1)
        first, second = points[..., before, :, :], points[..., before + 1, :, :]
        blended = (1 - weight) * first + weight * second
        nearest = np.where(weight < 0.5, first, second)
        either_missing = (layout.missing_mask(first) | layout.missing_mask(second))[..., None]
        return np.where(either_missing, nearest, blended).astype(np.float32)


@dataclass
class HandDropout:
    """Hides one hand (either, at random) over a random stretch of frames, as the detector does.

    A new person's hands are lost in other frames than the training people's: on real
    MediaPipe clips of isolated signs the left hand is undetected in about half of the
    frames and the right hand in about a third. The stretch covers between
    ``min_share`` of the clip and all of it; hidden points become (0, 0), the layout's
    "not detected".
    """
    min_share: float = 0.2

    def __call__(self, points, rng):
        frames = points.shape[-3]
        length = int(rng.integers(max(1, int(np.ceil(self.min_share * frames))), frames + 1))
        start = int(rng.integers(0, frames - length + 1))
        hand = layout.HAND_SLICES[int(rng.integers(2))]
        out = points.copy()
        out[..., start:start + length, hand, :] = 0
        return out


@dataclass
class RandomApply:
    """Applies ``transform`` with probability ``p``."""
    transform: Transform
    p: float = 0.5

    def __call__(self, points, rng):
        return self.transform(points, rng) if rng.random() < self.p else points


@dataclass
class OneOf:
    """Applies one transform picked uniformly at random."""
    transforms: Sequence[Transform]

    def __call__(self, points, rng):
        return self.transforms[rng.integers(len(self.transforms))](points, rng)


@dataclass
class Compose:
    transforms: Sequence[Transform] = field(default_factory=list)

    def __call__(self, points, rng):
        for transform in self.transforms:
            points = transform(points, rng)
        return points


def spoter_augmentations(probability: float = 0.5, gaussian_mean: float = 0.0, gaussian_std: float = 0.001,
                         mirror_probability: float = 0.0, strength: float = 1.0,
                         time_warp_probability: float = 0.0, hand_dropout_probability: float = 0.0) -> Compose:
    """The published recipe: with ``probability`` one of rotate / perspective / squeeze / arm
    rotation, then detector noise; optional mirroring, re-timing and hand drop-out (off by
    default, so the published recipe is unchanged). ``strength`` scales every range."""
    geometric = OneOf([
        Rotate(13.0 * strength), Perspective(0.1 * strength), Squeeze(0.15 * strength),
        ArmJointRotate(0.3, 4.0 * strength),
    ])
    transforms: list[Transform] = [RandomApply(geometric, probability)]
    if gaussian_std > 0:
        transforms.append(GaussianNoise(gaussian_mean, gaussian_std))
    if mirror_probability > 0:
        transforms.append(RandomApply(Mirror(), mirror_probability))
    if time_warp_probability > 0:
        transforms.append(RandomApply(TimeWarp(0.2 * strength, 0.2 * strength), time_warp_probability))
    if hand_dropout_probability > 0:
        transforms.append(RandomApply(HandDropout(), hand_dropout_probability))
    return Compose(transforms)
