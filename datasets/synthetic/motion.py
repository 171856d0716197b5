"""Time curves and hand paths: the timeline of a sample and the dominant hand's core path.

All of it is vectorised over frames: ``u`` is core time in ``[0, 1]`` per frame, and
every helper returns one row per frame.
"""
from __future__ import annotations

import math

import numpy as np

from datasets.synthetic.vocabulary import SignRecipe

# ------------------------------------------------------------------ time curves
# Standard deviations of the slow wobble channels of one sample: dominant / non-dominant
# hand position (shoulder widths), their orientations (degrees), head yaw/pitch/roll
# (radians), face, lower body, body sway (radians), camera drift (image units).
WOBBLE_SCALES = np.array([0.012] * 3 + [0.01] * 3 + [4.0] * 6 + [0.04] * 3 + [0.015] * 2 + [0.01] * 2
                         + [0.012] + [0.008] * 2)


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def minimum_jerk(s):
    s = np.clip(s, 0.0, 1.0)
    return s * s * s * (10 - 15 * s + 6 * s * s)


def smooth_noise(rng, t: np.ndarray, scales: np.ndarray, max_freq: float = 2.5) -> np.ndarray:
    """Slow random wobble ``(T, C)``: per channel a sum of 3 random low-frequency sinusoids
    with standard deviation ``scales[c]`` (one call for every channel a sample needs)."""
    scales = np.asarray(scales, dtype=np.float64)
    freqs = rng.uniform(0.3, max_freq, (3, len(scales)))
    phases = rng.uniform(0, 2 * np.pi, (3, len(scales)))
    amps = rng.normal(0, 1, (3, len(scales))) * (scales * np.sqrt(2 / 3))
    return (np.sin(2 * np.pi * t[:, None, None] * freqs + phases) * amps).sum(axis=1)


def time_warp(u: np.ndarray, a1: float, a2: float) -> np.ndarray:
    """Monotone time warp of [0, 1] onto itself (|a1| + |a2| < 1 keeps it increasing)."""
    return np.clip(u + a1 * np.sin(np.pi * u) / np.pi + a2 * np.sin(2 * np.pi * u) / (2 * np.pi), 0.0, 1.0)


# ------------------------------------------------------------------ trajectories
def _perpendicular(v: np.ndarray) -> np.ndarray:
    p = np.array([-v[1], v[0], 0.0])
    return p / max(np.linalg.norm(p), 1e-9)


def core_path(recipe: SignRecipe, keypoints: np.ndarray, u: np.ndarray, amplitude: float,
               phase: float = 0.0, cycles: float | None = None) -> np.ndarray:
    """Palm-centre path ``(T, 3)`` of the dominant hand at core times ``u`` in [0, 1]."""
    m, k0 = recipe.movement, keypoints[0]
    c, size = (recipe.cycles if cycles is None else cycles), recipe.size * amplitude
    if m == "hold":
        return k0 + 0.02 * np.sin(np.pi * u)[:, None] * np.array([0.3, 1.0, 0.0])
    if m in ("line", "arc", "zigzag"):
        s = minimum_jerk(u) if m != "zigzag" else u
        delta = keypoints[1] - k0
        path = k0 + s[:, None] * delta
        if m == "arc":
            path += (recipe.direction * size * np.sin(np.pi * s))[:, None] * _perpendicular(delta)
        elif m == "zigzag":
            path += (size * np.sin(2 * np.pi * c * s + phase))[:, None] * _perpendicular(delta)
        return path
    if m == "path3":
        half = np.clip(u * 2, 0, 2)
        first, second = minimum_jerk(half), minimum_jerk(half - 1)
        return k0 + first[:, None] * (keypoints[1] - k0) + second[:, None] * (keypoints[2] - keypoints[1])
    if m == "repeat":
        s = 0.5 - 0.5 * np.cos(2 * np.pi * c * u + phase)
        return k0 + s[:, None] * (keypoints[1] - k0)
    axis = np.array([np.cos(recipe.tilt), np.sin(recipe.tilt), 0.0])
    if m == "circle":
        start = recipe.tilt + phase
        angle = recipe.direction * 2 * np.pi * c * u + start
        ellipse = np.stack([np.cos(angle) - np.cos(start), 0.8 * (np.sin(angle) - np.sin(start)),
                            0.3 * (np.sin(angle) - np.sin(start))], -1)
        return k0 + size * ellipse  # starts (u = 0) on the keypoint
    if m == "tap":
        s = 0.5 + 0.5 * np.cos(2 * np.pi * c * u + phase)
        return k0 + (size * s)[:, None] * np.array([0.4 * axis[0], -0.5 - 0.3 * abs(axis[1]), 0.5])
    # shake
    return k0 + (size * np.sin(2 * np.pi * c * u + phase))[:, None] * axis

def hand_track_lost(rng, num_frames: int, rate: np.ndarray, mean_run: float = 3.0) -> np.ndarray:
    """Frames ``(T,)`` where a hand track is lost: runs start with per-frame ``rate``."""
    starts = rng.random(num_frames) < rate
    lengths = rng.geometric(1.0 / mean_run, num_frames)
    ends = np.where(starts, np.arange(num_frames) + lengths, -1)
    return np.maximum.accumulate(ends) > np.arange(num_frames)
