"""The whole run, :func:`extract_landmarks`: check the arguments, plan the jobs, skip what is done,
run the rest, then write the manifest and failures CSVs from the records.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from datasets.atomic import make_folder
from datasets.errors import UsageError
from datasets.extraction.jobs import DEFAULT_OUTPUTS, OUTPUTS, VideoJob, VideoOutcome
from datasets.extraction.manifest import FAILURE_COLUMNS, MANIFEST_COLUMNS, write_csv
from datasets.extraction.mediapipe_runner import BUNDLED_COMPLEXITY, ensure_pose_model
from datasets.extraction.pool import _run_jobs
from datasets.extraction.records import _discard, _remove_stale_temporaries, _write_record, completed_row
from datasets.extraction.videos import (DEFAULT_EXTENSIONS, list_videos, load_trims, parse_extensions, shard,
                                        shard_suffix, video_id)

log = logging.getLogger(__package__)  # one logger for the whole package, as before the split


@dataclass
class ExtractionSummary:
    """Result of :func:`extract_landmarks`; ``failures`` non-empty means exit status 1."""

    videos: int = 0
    extracted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)        # already complete
    failures: list[tuple[str, str]] = field(default_factory=list)
    no_person: list[str] = field(default_factory=list)
    not_in_index: list[str] = field(default_factory=list)
    frames: int = 0                                           # processed in this run
    seconds: float = 0.0
    manifest: Path | None = None
    failures_file: Path | None = None

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def extract_landmarks(
    videos_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    *,
    workers: int = 1,
    model_complexity: int = BUNDLED_COMPLEXITY,
    extensions: Iterable[str] = DEFAULT_EXTENSIONS,
    recursive: bool = False,
    overwrite: bool = False,
    num_shards: int = 1,
    shard_index: int = 0,
    index: str | os.PathLike | None = None,
    debug: bool = False,
    progress: bool = True,
    download: Callable[[int], None] | None = None,
    outputs: str | tuple[str, ...] = DEFAULT_OUTPUTS,
) -> ExtractionSummary:
    """Extract every video of (a shard of) a folder; see the package docstring for the rules.

    Raises :class:`UsageError`/:class:`DataError` (exit status 2) for a missing folder, bad
    arguments, a bad index or an unavailable model; bad videos are reported in the summary.
    """
    started = time.perf_counter()
    outputs = _resolve_outputs(outputs)
    if workers < 0:
        raise UsageError(f"--workers must be >= 0 (0 = in this process), got {workers}")
    selected = _select_videos(videos_folder, parse_extensions(extensions), recursive, num_shards, shard_index)
    trims = load_trims(index) if index is not None else {}
    ensure_pose_model(model_complexity, download)
    output = _make_output_folder(output_folder)

    summary = ExtractionSummary(videos=len(selected))
    jobs = _plan_jobs(selected, videos_folder, recursive, trims, index is not None, summary)
    rows, pending = _split_done(jobs, output, model_complexity, outputs, overwrite, summary)
    report, bar = _progress_reporter(output, model_complexity, outputs, rows, summary, started, len(jobs), progress)
    try:
        with logging_redirect_tqdm():
            _run_jobs(pending, workers, model_complexity, output, debug, report, outputs)
    finally:
        bar.close()
        _remove_stale_temporaries(output, (job.video for job in pending))

    _warn_about_videos(summary, rows, index)
    _write_csvs(summary, rows, output, shard_suffix(num_shards, shard_index))
    summary.extracted.sort()
    summary.seconds = time.perf_counter() - started
    return summary


# ------------------------------------------------------------------------- the steps, in order
def _resolve_outputs(outputs: str | tuple[str, ...]) -> tuple[str, ...]:
    """``--format`` (``"npy"``, ``"pose"``, ``"both"``) or a tuple of kinds → the kinds written per video."""
    if isinstance(outputs, str):
        if outputs not in OUTPUTS:
            raise UsageError(f"--format must be one of {', '.join(OUTPUTS)}, got {outputs!r}")
        outputs = OUTPUTS[outputs]
    return tuple(outputs)


def _select_videos(videos_folder: str | os.PathLike, extensions: tuple[str, ...], recursive: bool,
                   num_shards: int, shard_index: int) -> list[str]:
    """This shard's videos (relative paths); refuses a folder without any video."""
    every = list_videos(videos_folder, extensions, recursive)
    selected = shard(every, num_shards, shard_index)
    if not every:
        raise UsageError(f"no videos with extensions {','.join(extensions)} in {videos_folder}"
                         + ("" if recursive else " (add --recursive to search sub-folders)"))
    return selected


def _make_output_folder(output_folder: str | os.PathLike) -> Path:
    """Create the output folder (and parents); a folder that cannot be made is a usage error."""
    output = Path(output_folder)
    try:
        make_folder(output)
    except OSError as error:
        raise UsageError(f"--output-landmarks {output}: cannot create it ({error.filename}: {error.strerror})") from None
    return output


def _plan_jobs(selected: list[str], videos_folder: str | os.PathLike, recursive: bool,
               trims: dict[str, tuple[int, int]], indexed: bool, summary: ExtractionSummary) -> list[VideoJob]:
    """One job per id; a second video with a taken id is a failure, one missing from the index is noted."""
    jobs, owner = [], {}
    for relative in selected:
        vid = video_id(relative, recursive)
        if vid in owner:
            summary.failures.append((vid, f"{relative}: output name {vid}.npy is already used by {owner[vid]}"))
            continue
        owner[vid] = relative
        if indexed and vid not in trims:
            summary.not_in_index.append(vid)
        start, end = trims.get(vid, (1, -1))
        jobs.append(VideoJob(Path(videos_folder) / relative, relative, vid, start, end))
    return jobs


def _split_done(jobs: list[VideoJob], output: Path, model_complexity: int, outputs: tuple[str, ...],
                overwrite: bool, summary: ExtractionSummary) -> tuple[dict[str, dict], list[VideoJob]]:
    """The manifest rows of the videos already complete (skipped), and the jobs still to run."""
    rows: dict[str, dict] = {}
    pending = []
    for job in jobs:
        row = None if overwrite else completed_row(output, job, model_complexity, outputs)
        if row is None:
            pending.append(job)
        else:
            rows[job.video] = row
            summary.skipped.append(job.video)
    _remove_stale_temporaries(output, (job.video for job in pending))
    if summary.skipped:
        log.info("%d of %d videos already extracted; skipping them (--overwrite redoes them)",
                 len(summary.skipped), len(jobs))
    return rows, pending


def _progress_reporter(output: Path, model_complexity: int, outputs: tuple[str, ...], rows: dict[str, dict],
                       summary: ExtractionSummary, started: float, total: int, progress: bool):
    """The progress bar, and the ``report`` :func:`_run_jobs` calls for each finished video.

    ``report`` writes a success's record and keeps its row, or discards a failure's output.
    """
    bar = tqdm(total=total, initial=len(summary.skipped), unit="video", desc="extracting",
               disable=not progress, dynamic_ncols=True)

    def report(job: VideoJob, outcome: VideoOutcome) -> None:
        if outcome.row is not None:
            _write_record(output, job, model_complexity, outcome.row, outputs)
            rows[job.video] = outcome.row
            summary.extracted.append(job.video)
        else:
            _discard(output, job.video)
            summary.failures.append((job.video, outcome.reason or "unknown error"))
            log.warning("skipped %s", outcome.reason)
        summary.frames += outcome.frames
        elapsed = time.perf_counter() - started
        bar.set_postfix_str(f"{summary.frames / max(elapsed, 1e-9):.1f} frames/s", refresh=False)
        bar.update(1)

    return report, bar


def _warn_about_videos(summary: ExtractionSummary, rows: dict[str, dict], index: str | os.PathLike | None) -> None:
    """Note the videos with nobody in them and those the index does not list."""
    summary.no_person = sorted(v for v, row in rows.items() if float(row["pose_share"]) == 0)
    if summary.no_person:
        log.warning("no person detected in %d video(s), written as all-zero landmarks (pose_share 0): %s",
                    len(summary.no_person), ", ".join(summary.no_person))
    if summary.not_in_index:
        log.warning("%d video(s) not in the index %s, extracted whole: %s", len(summary.not_in_index), index,
                    ", ".join(summary.not_in_index[:10]) + (" ..." if len(summary.not_in_index) > 10 else ""))


def _write_csvs(summary: ExtractionSummary, rows: dict[str, dict], output: Path, suffix: str) -> None:
    """``manifest<suffix>.csv`` (every row, sorted by id) and ``failures<suffix>.csv``."""
    summary.manifest = output / f"manifest{suffix}.csv"
    summary.failures_file = output / f"failures{suffix}.csv"
    summary.failures.sort()
    write_csv(summary.manifest, MANIFEST_COLUMNS, (rows[v] for v in sorted(rows)))
    write_csv(summary.failures_file, FAILURE_COLUMNS, (dict(zip(FAILURE_COLUMNS, f)) for f in summary.failures))


__all__ = ["ExtractionSummary", "extract_landmarks"]
