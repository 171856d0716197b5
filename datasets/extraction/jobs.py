"""What every step of extraction passes around: a video job, a worker's outcome, the output kinds.

Also the error a bad video raises (:class:`VideoError`), which becomes its ``failures.csv`` reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datasets.errors import DataError

# what --format asks for → the files written per video
OUTPUTS = {"npy": ("npy",), "pose": ("pose",), "both": ("npy", "pose")}
DEFAULT_OUTPUTS = OUTPUTS["npy"]


class VideoError(DataError):
    """One video cannot be used; the message says why (it becomes its failures.csv reason)."""


@dataclass(frozen=True)
class VideoJob:
    """One video to extract: where it is, its id, and the frames to keep (WLASL convention)."""

    source: Path
    relative: str            # POSIX path relative to the videos folder (recorded, for resuming)
    video: str               # id; output file stem
    frame_start: int = 1     # 1-based, inclusive
    frame_end: int = -1      # 1-based, inclusive; -1 = to the end


@dataclass(frozen=True)
class VideoOutcome:
    """What a worker reports back: a manifest row, or a failure reason."""

    video: str
    row: dict | None = None
    reason: str | None = None
    frames: int = 0          # frames run through MediaPipe (for throughput)


__all__ = ["DEFAULT_OUTPUTS", "OUTPUTS", "VideoError", "VideoJob", "VideoOutcome"]
