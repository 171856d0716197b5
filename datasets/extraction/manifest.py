"""The run's CSVs: ``manifest.csv`` and ``failures.csv`` (or a shard's), and joining shards into them.

Columns and meaning are in the package docstring (*Manifest*, *Failures*, *Sharding*).
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from datasets.atomic import atomic_write
from datasets.errors import DataError, UsageError

MANIFEST_COLUMNS = ("video", "frames", "fps", "width", "height", "pose_share", "left_hand_share",
                    "right_hand_share", "seconds", "frame_start", "frame_end")
FAILURE_COLUMNS = ("video", "reason")
_SHARD_FILE = re.compile(r"^(manifest|failures)-(\d+)-of-(\d+)\.csv$")


def write_csv(path: Path, columns: Iterable[str], rows: Iterable[dict]) -> None:
    with atomic_write(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


@dataclass
class MergeSummary:
    shards: int
    videos: int
    failures: int
    manifest: Path
    failures_file: Path


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != columns:
            raise DataError(f"{path}: expected columns {','.join(columns)}, got {','.join(reader.fieldnames or [])}")
        return list(reader)


def _shard_files(output: Path) -> tuple[int, dict[str, dict[int, Path]]]:
    """The shard count and every shard's CSVs (``{"manifest": {i: path}, "failures": {...}}``), all present."""
    found: dict[str, dict[int, Path]] = {"manifest": {}, "failures": {}}
    totals = set()
    for path in output.iterdir():
        match = _SHARD_FILE.match(path.name)
        if match:
            kind, i, n = match.group(1), int(match.group(2)), int(match.group(3))
            found[kind][i] = path
            totals.add(n)
    if not totals:
        raise UsageError(f"no shard files (manifest-<i>-of-<N>.csv) in {output}")
    if len(totals) > 1:
        raise UsageError(f"{output} holds shard files of different shard counts {sorted(totals)}; "
                         "remove the stale ones")
    total = totals.pop()
    missing = [f"{kind}-{i}-of-{total}.csv" for i in range(total) for kind, files in found.items() if i not in files]
    if missing:
        raise UsageError(f"{output}: missing {', '.join(missing)} (have all shards finished?)")
    return total, found


def merge_shards(output_folder: str | os.PathLike) -> MergeSummary:
    """Join every shard's ``manifest-<i>-of-<N>.csv``/``failures-…`` into ``manifest.csv``/``failures.csv``.

    Refuses (UsageError) when shards are missing, disagree on N, or list a video twice.
    """
    output = Path(output_folder)
    if not output.is_dir():
        raise UsageError(f"landmarks folder {output} does not exist or is not a folder")
    total, found = _shard_files(output)
    manifest, failures, seen = [], [], {}
    for i in range(total):
        for row in _read_csv(found["manifest"][i], MANIFEST_COLUMNS):
            if row["video"] in seen:
                raise DataError(f"{found['manifest'][i]}: video {row['video']!r} also in shard {seen[row['video']]}")
            seen[row["video"]] = i
            manifest.append(row)
        failures.extend(_read_csv(found["failures"][i], FAILURE_COLUMNS))
    manifest.sort(key=lambda r: r["video"])
    failures.sort(key=lambda r: (r["video"], r["reason"]))
    summary = MergeSummary(total, len(manifest), len(failures), output / "manifest.csv", output / "failures.csv")
    write_csv(summary.manifest, MANIFEST_COLUMNS, manifest)
    write_csv(summary.failures_file, FAILURE_COLUMNS, failures)
    return summary


__all__ = ["FAILURE_COLUMNS", "MANIFEST_COLUMNS", "MergeSummary", "merge_shards", "write_csv"]
