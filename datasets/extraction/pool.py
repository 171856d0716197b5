"""Running jobs: one Holistic per worker process, a worker's job, and surviving a worker that dies.

The functions a worker runs (:func:`_init_worker`, :func:`_work`) are top-level in this module so
the ``spawn`` pool can pickle them by module path.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import sys
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Callable

from datasets.atomic import atomic_save_npy
from datasets.extraction.jobs import DEFAULT_OUTPUTS, VideoError, VideoJob, VideoOutcome
from datasets.extraction.mediapipe_runner import create_holistic, extract_video
from datasets.formats import pose_file

log = logging.getLogger(__package__)  # one logger for the whole package, as before the split

_WORKER: dict = {}


def _watch_parent(parent: int) -> None:
    """Exit when the parent dies (e.g. ``kill -9``), so no orphan keeps writing into the output."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker(model_complexity: int, output: str, quiet: bool, parent: int,
                 outputs: tuple[str, ...] = DEFAULT_OUTPUTS) -> None:
    """Pool initializer: one Holistic per process, native log noise silenced unless debugging."""
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    # mediapipe 0.10.21 imports TensorFlow, when installed, only for a documentation
    # decorator (mediapipe/tasks/python/core/optional_dependencies.py) and falls back when it
    # is missing; in this dedicated process, skipping it saves ~2.5 s per worker start.
    if "tensorflow" not in sys.modules:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]  # import raises ModuleNotFoundError
    saved = os.dup(2) if quiet else None
    if quiet:  # FFmpeg and MediaPipe's C++ logging write straight to fd 2
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    try:
        _WORKER.update(holistic=create_holistic(model_complexity), model_complexity=model_complexity,
                       output=Path(output), debug=not quiet, outputs=tuple(outputs))
    except BaseException:
        if saved is not None:
            os.dup2(saved, 2)  # let the traceback of a failed start be seen
        raise
    finally:
        if saved is not None:
            os.close(saved)


def process_job(job: VideoJob, holistic, output: Path, debug: bool = False,
                outputs: tuple[str, ...] = DEFAULT_OUTPUTS) -> VideoOutcome:
    """Extract one video and write its ``.npy`` and/or ``.pose`` atomically; never raises for a bad video."""
    try:
        raw, row, whole = extract_video(job, holistic, full="pose" in outputs)
        if "pose" in outputs:
            fps = row["fps"] if row["fps"] > 0 else 0.0
            pose_file.write_pose(output / f"{job.video}.pose", *whole, fps, row["width"], row["height"])
        if "npy" in outputs:
            atomic_save_npy(output / f"{job.video}.npy", raw)
    except VideoError as error:
        return VideoOutcome(job.video, reason=str(error))
    except Exception as error:  # a crash on one video must not end the batch
        detail = traceback.format_exc() if debug else f"{type(error).__name__}: {error}"
        return VideoOutcome(job.video, reason=f"{job.relative}: unexpected error: {detail}".strip())
    return VideoOutcome(job.video, row=row, frames=len(raw))


def _work(job: VideoJob) -> VideoOutcome:
    return process_job(job, _WORKER["holistic"], _WORKER["output"], _WORKER["debug"], _WORKER["outputs"])


def _run_pool(queue: deque, size: int, init_args: tuple,
              report: Callable[[VideoJob, VideoOutcome], None]) -> list[VideoJob]:
    """Run jobs from ``queue`` with ``size`` workers, at most ``size`` in flight.

    Returns the jobs in flight if a worker process died (the pool is then unusable), else [].
    """
    context = multiprocessing.get_context("spawn")  # fork + MediaPipe threads can deadlock
    pool = cf.ProcessPoolExecutor(size, mp_context=context, initializer=_init_worker, initargs=init_args)
    inflight: dict[cf.Future, VideoJob] = {}
    try:
        while queue or inflight:
            broken = False
            while queue and len(inflight) < size and not broken:
                job = queue.popleft()
                try:
                    inflight[pool.submit(_work, job)] = job
                except cf.process.BrokenProcessPool:
                    # the pool broke between two submissions: this job never ran, so it goes back
                    queue.appendleft(job)
                    broken = True
            # a broken pool settles every future at once, finished ones keep their results
            done, _ = cf.wait(inflight, return_when=cf.ALL_COMPLETED if broken else cf.FIRST_COMPLETED)
            for future in done:
                error = future.exception()
                if isinstance(error, cf.process.BrokenProcessPool):
                    broken = True
                    continue
                job = inflight.pop(future)
                outcome = future.result() if error is None else VideoOutcome(job.video, reason=f"{job.relative}: {error}")
                report(job, outcome)
            if broken:
                lost = list(inflight.values())
                inflight.clear()
                return lost
        return []
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_jobs(jobs: list[VideoJob], workers: int, model_complexity: int, output: Path, debug: bool,
              report: Callable[[VideoJob, VideoOutcome], None], outputs: tuple[str, ...] = DEFAULT_OUTPUTS) -> None:
    """Process ``jobs`` in ``workers`` processes (0: in this process, for debugging).

    If a worker process dies (a native crash in FFmpeg or MediaPipe), the videos it may have
    been on are retried one at a time in a fresh single-worker pool, so the culprit is
    identified, reported, and the rest of the batch goes on.
    """
    if workers == 0:
        holistic = create_holistic(model_complexity)
        try:
            for job in jobs:
                report(job, process_job(job, holistic, output, debug, outputs))
        finally:
            holistic.close()
        return
    init_args = (model_complexity, str(output), not debug, os.getpid(), tuple(outputs))
    pending, suspects = deque(jobs), deque()
    while pending or suspects:
        isolating = bool(suspects)
        queue = suspects if isolating else pending
        lost = _run_pool(queue, 1 if isolating else min(workers, len(queue)), init_args, report)
        if isolating:
            for job in lost:
                report(job, VideoOutcome(job.video, reason=f"{job.relative}: the worker process died while "
                                                           "processing it (native crash in FFmpeg or MediaPipe)"))
        elif lost:
            log.warning("a worker process died; retrying its %d video(s) one at a time: %s",
                        len(lost), ", ".join(job.relative for job in lost))
            suspects.extend(lost)


__all__ = ["process_job"]
