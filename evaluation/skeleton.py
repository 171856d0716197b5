"""Landmark sequences drawn as stick figures, still or animated, several clips side by side.

Bones are named by SPOTER point names and resolved through :mod:`datasets.layout`, so the
drawing follows the one layout definition. Undetected points (0, 0) hide their bones.
"""
from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from datasets import layout

_BODY_BONES = (
    ("leftEar", "leftEye"), ("leftEye", "nose"), ("nose", "rightEye"), ("rightEye", "rightEar"),
    ("nose", "neck"), ("neck", "leftShoulder"), ("neck", "rightShoulder"),
    ("leftShoulder", "leftElbow"), ("leftElbow", "leftWrist"),
    ("rightShoulder", "rightElbow"), ("rightElbow", "rightWrist"),
)
_FINGERS = (
    ("thumbCMC", "thumbMP", "thumbIP", "thumbTip"),
    ("indexMCP", "indexPIP", "indexDIP", "indexTip"),
    ("middleMCP", "middlePIP", "middleDIP", "middleTip"),
    ("ringMCP", "ringPIP", "ringDIP", "ringTip"),
    ("littleMCP", "littlePIP", "littleDIP", "littleTip"),
)
_PALM = ("indexMCP", "middleMCP", "ringMCP", "littleMCP")


def _hand_bones(side: str) -> list[tuple[str, str]]:
    bones = []
    for finger in _FINGERS:
        chain = ("wrist", *finger)
        bones.extend((f"{a}_{side}", f"{b}_{side}") for a, b in pairwise(chain))
    bones.extend((f"{a}_{side}", f"{b}_{side}") for a, b in pairwise(_PALM))
    return bones


BONE_NAMES = (*_BODY_BONES, *_hand_bones("left"), *_hand_bones("right"))
BONES = np.asarray([(layout.point_index(a), layout.point_index(b)) for a, b in BONE_NAMES], dtype=np.int64)
# Colour group of each bone: 0 body, 1 left hand, 2 right hand.
BONE_GROUPS = np.asarray([0 if a < layout.NUM_BODY else (1 if a < layout.RIGHT_HAND_SLICE.start else 2)
                          for a, _ in BONES])
GROUP_COLOURS = ("#444444", "#d62728", "#1f77b4")


def bone_segments(points: np.ndarray) -> np.ndarray:
    """``(T, 54, 2)`` points → ``(T, B, 2, 2)`` bone end points, NaN where an end is undetected."""
    points = np.asarray(points, np.float32)
    segments = points[:, BONES]                                   # (T, B, 2 ends, 2 coords)
    missing = layout.missing_mask(points)[:, BONES].any(-1)        # (T, B)
    return np.where(missing[..., None, None], np.nan, segments)


def _limits(points: np.ndarray, margin: float = 0.05):
    present = ~layout.missing_mask(points)
    if not present.any():
        return (0.0, 1.0), (1.0, 0.0)
    xy = points[present]
    lo, hi = xy.min(0), xy.max(0)
    pad = margin * max(float((hi - lo).max()), 1e-3)
    return (lo[0] - pad, hi[0] + pad), (hi[1] + pad, lo[1] - pad)  # image y points down


def _frame_indices(lengths: Sequence[int], max_frames: int | None) -> np.ndarray:
    """Common animation time base: each clip is stretched/subsampled to the same frame count."""
    count = max(lengths)
    if max_frames:
        count = min(count, max_frames)
    return np.arange(count)


def animate(clips: Sequence[np.ndarray], titles: Sequence[str] | None = None, interval: int = 60,
            max_frames: int | None = 60, panel_size: float = 2.6):
    """A matplotlib animation of ``(T, 54, 2)`` clips side by side, all played over the same duration.

    Show it in a notebook with ``IPython.display.HTML(animation.to_jshtml())``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation
    from matplotlib.collections import LineCollection

    clips = [np.asarray(c, np.float32) for c in clips]
    titles = list(titles) if titles is not None else [f"clip {i}" for i in range(len(clips))]
    steps = _frame_indices([len(c) for c in clips], max_frames)
    fig, axes = plt.subplots(1, len(clips), figsize=(panel_size * len(clips), panel_size * 1.1), squeeze=False)
    collections, per_clip = [], []
    colours = [GROUP_COLOURS[g] for g in BONE_GROUPS]
    for ax, clip, title in zip(axes[0], clips, titles):
        (x0, x1), (y0, y1) = _limits(clip)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=8)
        lines = LineCollection([], colors=colours, linewidths=1.5)
        ax.add_collection(lines)
        collections.append(lines)
        segments = bone_segments(clip)
        per_clip.append(segments[np.round(np.linspace(0, len(clip) - 1, len(steps))).astype(int)])
    fig.tight_layout()

    def draw(step):
        for lines, segments in zip(collections, per_clip):
            lines.set_segments(list(segments[step]))
        return collections

    animation = FuncAnimation(fig, draw, frames=len(steps), interval=interval, blit=False)
    plt.close(fig)  # shown through the animation, not as a still figure
    return animation


def draw_frame(ax, points: np.ndarray, title: str = "") -> None:
    """One frame ``(54, 2)`` as a still stick figure on ``ax``."""
    from matplotlib.collections import LineCollection
    segments = bone_segments(np.asarray(points, np.float32)[None])[0]
    ax.add_collection(LineCollection(list(segments), colors=[GROUP_COLOURS[g] for g in BONE_GROUPS], linewidths=1.5))
    (x0, x1), (y0, y1) = _limits(np.asarray(points)[None])
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=8)
