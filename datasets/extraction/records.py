"""Resuming: one ``.records/<id>.json`` per finished video, and cleaning up after failed or killed runs.

A record holds the video's manifest row and the settings it was extracted with; a rerun keeps a
video only when its outputs are intact and its settings unchanged (package docstring, *Resuming*).
"""
from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Iterable

import numpy as np

from datasets import layout
from datasets.atomic import atomic_write
from datasets.extraction.jobs import DEFAULT_OUTPUTS, VideoJob
from datasets.formats import pose_file

RECORDS_DIR = ".records"
_TEMPORARY = re.compile(r"^\.(.+)\.[^.]+\.tmp$")  # datasets.atomic: .<name>.<random>.tmp


def _settings(job: VideoJob, model_complexity: int, outputs: tuple[str, ...] = DEFAULT_OUTPUTS) -> dict:
    settings = {"model_complexity": model_complexity, "frame_start": job.frame_start,
                "frame_end": job.frame_end, "source": job.relative}
    if tuple(outputs) != DEFAULT_OUTPUTS:  # records of .npy-only runs stay as they always were
        settings["outputs"] = list(outputs)
    return settings


def _record_path(output: Path, video: str) -> Path:
    return output / RECORDS_DIR / f"{video}.json"


def _write_record(output: Path, job: VideoJob, model_complexity: int, row: dict,
                  outputs: tuple[str, ...] = DEFAULT_OUTPUTS) -> None:
    with atomic_write(_record_path(output, job.video), "w") as handle:
        json.dump({"row": row, "settings": _settings(job, model_complexity, outputs)}, handle, sort_keys=True)


def completed_row(output: Path, job: VideoJob, model_complexity: int,
                  outputs: tuple[str, ...] = DEFAULT_OUTPUTS) -> dict | None:
    """The manifest row of a finished, intact extraction of ``job`` with these settings, else None."""
    record = _record_path(output, job.video)
    if not record.is_file() or not all((output / f"{job.video}.{kind}").is_file() for kind in outputs):
        return None
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        row, frames = data["row"], int(data["row"]["frames"])
        if data["settings"] != _settings(job, model_complexity, outputs):
            return None
        if "npy" in outputs:
            # header and size only: files are written atomically, so reading every value is not needed
            array = np.load(output / f"{job.video}.npy", allow_pickle=False, mmap_mode="r")
            if array.dtype != np.float32 or array.shape != (frames, layout.RAW_FEATURES):
                return None
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        return None
    if "pose" in outputs and pose_file.pose_frame_count(output / f"{job.video}.pose") != frames:
        return None
    return row


def _discard(output: Path, video: str) -> None:
    """Remove a failed video's stale output so the folder agrees with the manifest."""
    for path in (output / f"{video}.npy", output / f"{video}.pose", _record_path(output, video)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _remove_stale_temporaries(output: Path, videos: Iterable[str]) -> None:
    """Delete temp files a killed run left for these videos (``.<name>.<random>.tmp``, see datasets.atomic)."""
    names = {f"{video}.{kind}" for video in videos for kind in ("npy", "pose")}
    if not names:
        return
    for folder, wanted in ((output, names), (output / RECORDS_DIR, {f"{Path(n).stem}.json" for n in names})):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = _TEMPORARY.match(path.name)
            if match and match.group(1) in wanted:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


__all__ = ["RECORDS_DIR", "completed_row"]
