"""Videos → MediaPipe Holistic landmarks, one ``<video>.npy`` per video (raw layout, ``(T, 150)``),
and/or one ``<video>.pose`` (pose-format, full Holistic header: pose, face, hands, world landmarks).

Offline (only the bundled ``model_complexity=1`` pose model is guaranteed), parallel (one
Holistic instance per worker process), resumable and shardable. Decisions worth knowing:

* **Names.** A video's id is its file stem; with ``recursive=True`` it is its path relative
  to the videos folder without the extension, ``/`` replaced by ``__`` (``hello/001.mp4`` →
  ``hello__001``), so ids stay unique across sub-folders. Output is ``<id>.npy`` (``outputs``
  ``("npy",)``, the default), ``<id>.pose`` (``("pose",)``) or both. Files whose
  name starts with ``.`` are ignored. Two videos mapping to the same id (``a.mp4`` and
  ``a.avi``): the first in sorted order wins, the others are reported as failures.
* **Manifest.** ``manifest.csv`` has one row per extracted video, sorted by id:
  ``video, frames, fps, width, height, pose_share, left_hand_share, right_hand_share,
  seconds, frame_start, frame_end``. ``seconds`` is the duration of the extracted clip
  (frames / fps), not processing time, so a resumed run writes the same manifest as an
  uninterrupted one. ``frame_start``/``frame_end`` are the trim applied from ``--index``
  (1 and -1 when none): such ``.npy`` files already hold only the trimmed frames.
* **Failures.** Unopenable, empty, non-video, truncated (fewer frames decoded than the
  container declares) and frame-less videos are skipped, listed in ``failures.csv``
  (``video, reason``) and leave no ``.npy``. Failed videos are retried on every run.
* **No person.** A readable video where nothing is detected is still written (all zeros),
  listed with ``pose_share`` 0 and logged as a warning: "nobody there" is a fact about the
  video, and dropping it is a later, dataset-level decision.
* **Resuming.** Each finished video leaves ``.records/<id>.json`` (its manifest row and the
  settings used). A rerun skips a video whose ``.npy`` loads, is float32 ``(frames, 150)``
  with ``frames`` equal to its record (and whose ``.pose``, when asked for, reads back with
  that many frames), and whose record has the same model complexity, trim, source and
  outputs; everything else is redone. The ``.npy``, each record and the CSVs are written
  atomically, and the CSVs are rebuilt from the records at the end, so ``kill -9`` loses at
  most the videos in flight.
* **Sharding.** Shard ``i`` of ``N`` takes ``sorted_videos[i::N]`` and writes
  ``manifest-<i>-of-<N>.csv``/``failures-<i>-of-<N>.csv``; :func:`merge_shards` joins them.
* **Determinism.** The tracker is reset before every video, so a video's landmarks do not
  depend on which worker handled it or what it handled before (MediaPipe on CPU gives
  bit-identical results for identical frames).
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import importlib.util
import io
import json
import logging
import multiprocessing
import os
import re
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from datasets import layout
from datasets.atomic import atomic_save_npy, atomic_write, make_folder
from datasets.errors import DataError, UsageError
from datasets.formats import pose_file

log = logging.getLogger(__name__)

DEFAULT_EXTENSIONS = ("mp4", "avi", "mov", "mkv", "webm")
RECORDS_DIR = ".records"
MANIFEST_COLUMNS = ("video", "frames", "fps", "width", "height", "pose_share", "left_hand_share",
                    "right_hand_share", "seconds", "frame_start", "frame_end")
FAILURE_COLUMNS = ("video", "reason")
# Pose landmark model per Holistic model_complexity; only "full" ships inside the
# mediapipe 0.10.21 wheel, the others are downloaded by mediapipe at first use.
POSE_MODELS = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}
BUNDLED_COMPLEXITY = 1
# Containers sometimes declare a frame count that is an estimate; a shortfall up to this
# share (and at least one frame) is tolerated before a video counts as truncated.
TRUNCATION_TOLERANCE = 0.02
# (results attribute, number of points, offset of its first point in the raw layout)
_GROUPS = (
    ("pose_landmarks", layout.NUM_POSE, layout.RAW_POSE_OFFSET),
    ("left_hand_landmarks", layout.NUM_HAND, layout.RAW_LEFT_HAND_OFFSET),
    ("right_hand_landmarks", layout.NUM_HAND, layout.RAW_RIGHT_HAND_OFFSET),
)
# what --format asks for → the files written per video
OUTPUTS = {"npy": ("npy",), "pose": ("pose",), "both": ("npy", "pose")}
DEFAULT_OUTPUTS = OUTPUTS["npy"]
# (results attribute, points, confidence from visibility) in pose-format's Holistic order
_HOLISTIC_GROUPS = (("pose_landmarks", layout.NUM_POSE, True), ("face_landmarks", pose_file.HOLISTIC_FACE_POINTS, False),
                    ("left_hand_landmarks", layout.NUM_HAND, False), ("right_hand_landmarks", layout.NUM_HAND, False),
                    ("pose_world_landmarks", layout.NUM_POSE, True))
_SHARD_FILE = re.compile(r"^(manifest|failures)-(\d+)-of-(\d+)\.csv$")
_TEMPORARY = re.compile(r"^\.(.+)\.[^.]+\.tmp$")  # datasets.atomic: .<name>.<random>.tmp


class ModelUnavailableError(UsageError):
    """The requested model complexity needs a pose model that is neither bundled nor downloadable."""


class VideoError(DataError):
    """One video cannot be used; the message says why (it becomes its failures.csv reason)."""


# ------------------------------------------------------------------------------ jobs and results
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


# ---------------------------------------------------------------------------- listing and naming
def parse_extensions(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"mp4, .AVI"`` → ``("mp4", "avi")``; refuses an empty list."""
    items = text.split(",") if isinstance(text, str) else list(text)
    exts = tuple(dict.fromkeys(e.strip().lstrip(".").lower() for e in items if e.strip().lstrip(".")))
    if not exts:
        raise UsageError(f"--extensions: no extension given in {text!r}")
    return exts


def video_id(relative: str, recursive: bool) -> str:
    """Output id of a video from its POSIX path relative to the videos folder (see module doc)."""
    path = Path(relative)
    return "__".join(path.with_suffix("").parts) if recursive else path.stem


def list_videos(folder: str | os.PathLike, extensions: Iterable[str] = DEFAULT_EXTENSIONS,
                recursive: bool = False) -> list[str]:
    """Relative POSIX paths of the videos in ``folder``, sorted (the order shards split)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"videos folder {folder} does not exist or is not a folder")
    wanted = {f".{e.lower()}" for e in extensions}
    found = []
    for path in (folder.rglob("*") if recursive else folder.iterdir()):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        # A broken link is listed too, so it is reported as unreadable rather than silently ignored.
        if path.suffix.lower() in wanted and (path.is_file() or (path.is_symlink() and not path.exists())):
            found.append(relative.as_posix())
    return sorted(found)


def shard(items: list, num_shards: int, shard_index: int) -> list:
    """Deterministic partition of a sorted list: shard ``i`` takes ``items[i::N]``."""
    if num_shards < 1:
        raise UsageError(f"--num-shards must be at least 1, got {num_shards}")
    if not 0 <= shard_index < num_shards:
        raise UsageError(f"--shard-index must be in 0..{num_shards - 1}, got {shard_index}")
    return items[shard_index::num_shards]


def shard_suffix(num_shards: int, shard_index: int) -> str:
    """File-name suffix of a shard's CSVs (empty when not sharded)."""
    return "" if num_shards == 1 else f"-{shard_index}-of-{num_shards}"


def load_trims(index_path: str | os.PathLike) -> dict[str, tuple[int, int]]:
    """``video_id → (frame_start, frame_end)`` from a WLASL-style JSON or CSV index.

    The index is parsed by :func:`datasets.landmark_folder.read_index`; ranges are checked
    here (a video listed twice must have the same range).
    """
    from datasets.landmark_folder import read_index

    trims: dict[str, tuple[int, int]] = {}
    for entry in read_index(index_path):
        start, end = entry.frame_start, entry.frame_end
        where = f"{index_path}: video_id {entry.video_id!r}"
        if start < 1:
            raise DataError(f"{where}: frame_start must be >= 1 (1-based), got {start}")
        if end != -1 and end < start:
            raise DataError(f"{where}: frame_end must be -1 or >= frame_start {start}, got {end}")
        if trims.setdefault(entry.video_id, (start, end)) != (start, end):
            raise DataError(f"{where}: listed twice with different frame ranges "
                            f"{trims[entry.video_id]} and {(start, end)}")
    return trims


# ------------------------------------------------------------------------------------ MediaPipe
def _mediapipe_root() -> Path:
    """Folder of the installed ``mediapipe`` package, found without importing it."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError("mediapipe is not installed; install requirements.txt (mediapipe==0.10.21)")
    return Path(list(spec.submodule_search_locations)[0])


def pose_model_path(model_complexity: int) -> Path:
    """Where mediapipe keeps (or would download) the pose model of a complexity."""
    return _mediapipe_root() / "modules" / "pose_landmark" / POSE_MODELS[model_complexity]


def _mediapipe_download(model_complexity: int) -> None:
    from mediapipe.python.solutions import download_utils

    download_utils.download_oss_model(f"mediapipe/modules/pose_landmark/{POSE_MODELS[model_complexity]}")


def ensure_pose_model(model_complexity: int, download: Callable[[int], None] | None = None) -> Path:
    """Check (before any worker starts) that the complexity's pose model is on disk.

    Complexities 0 and 2 are fetched by mediapipe on first use; offline that fails, and
    this turns the failure into one clear line instead of a crash in every worker.
    """
    if model_complexity not in POSE_MODELS:
        raise UsageError(f"--model-complexity must be one of {sorted(POSE_MODELS)}, got {model_complexity}")
    path = pose_model_path(model_complexity)
    if path.is_file():
        return path
    name = POSE_MODELS[model_complexity]
    if model_complexity == BUNDLED_COMPLEXITY:
        raise ModelUnavailableError(f"mediapipe installation lacks its bundled {name} ({path}); "
                                    "reinstall mediapipe==0.10.21")
    try:
        log.info("downloading %s for --model-complexity %d", name, model_complexity)
        with contextlib.redirect_stdout(io.StringIO()):  # mediapipe prints its own progress line
            (download or _mediapipe_download)(model_complexity)
    except Exception as error:  # urllib/ssl/socket errors all mean "not available here"
        with contextlib.suppress(OSError):
            path.unlink()  # mediapipe writes in place: never leave a partial model behind
        reason = getattr(error, "reason", None) or error
        raise ModelUnavailableError(
            f"--model-complexity {model_complexity} needs MediaPipe's {name}, which is not bundled with "
            f"mediapipe 0.10.21 and could not be downloaded ({reason}); use --model-complexity "
            f"{BUNDLED_COMPLEXITY} (bundled, works offline) or run once with internet access"
        ) from None
    if not path.is_file():
        raise ModelUnavailableError(f"--model-complexity {model_complexity}: download finished but {path} is missing")
    return path


def create_holistic(model_complexity: int):
    """A Holistic graph in video mode (tracking between frames), as every worker uses it."""
    import mediapipe as mp

    return mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=model_complexity)


def landmarks_to_vector(results, out: np.ndarray | None = None) -> np.ndarray:
    """One frame's Holistic results → raw-layout ``(150,)`` float32; undetected groups are 0.

    Each group is read in one ``np.fromiter`` call over its protobuf points.
    """
    out = np.zeros(layout.RAW_FEATURES, np.float32) if out is None else out
    out[:] = 0.0
    for attribute, count, offset in _GROUPS:
        group = getattr(results, attribute, None)
        if group is None:
            continue
        points = group.landmark
        if len(points) != count:
            raise ValueError(f"{attribute}: expected {count} landmarks, got {len(points)}")
        start = offset * layout.NUM_COORDS
        out[start:start + count * layout.NUM_COORDS] = np.fromiter(
            chain.from_iterable((p.x, p.y) for p in points), np.float32, count * layout.NUM_COORDS)
    return out


def holistic_points(results, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """One frame's full Holistic results as a ``.pose`` file stores them: ``(576, 3)`` and ``(576,)``.

    x and y are pixels, z as MediaPipe gives it (all three scaled like pose-format's own
    MediaPipe reader does, world landmarks included); confidence is the visibility for pose
    points, 1 for face and hand points, 0 for groups not detected.
    """
    data = np.zeros((pose_file.HOLISTIC_POINTS, 3), np.float32)
    confidence = np.zeros(pose_file.HOLISTIC_POINTS, np.float32)
    start = 0
    for attribute, count, visibility in _HOLISTIC_GROUPS:
        group = getattr(results, attribute, None)
        if group is not None:
            points = group.landmark
            if len(points) != count:
                raise ValueError(f"{attribute}: expected {count} landmarks, got {len(points)}")
            values = np.fromiter(chain.from_iterable((p.x, p.y, p.z) for p in points), np.float32, count * 3)
            data[start:start + count] = values.reshape(count, 3) * np.array([width, height, 1], np.float32)
            confidence[start:start + count] = (np.fromiter((p.visibility for p in points), np.float32, count)
                                               if visibility else 1.0)
        start += count
    return data, confidence


def detection_shares(raw: np.ndarray) -> tuple[float, float, float]:
    """Share of frames in which pose, left hand and right hand were detected."""
    shares = []
    for _, count, offset in _GROUPS:
        group = raw[:, offset * layout.NUM_COORDS:(offset + count) * layout.NUM_COORDS]
        shares.append(float(np.any(group != 0, axis=1).mean()) if len(raw) else 0.0)
    return tuple(shares)


def extract_video(job: VideoJob, holistic, full: bool = False) -> tuple[np.ndarray, dict, tuple | None]:
    """Run one video through ``holistic`` (reset first); returns ``(T, 150)``, its manifest row and,
    when ``full``, the whole Holistic result per frame (see :func:`holistic_points`), else None.

    Raises :class:`VideoError` for anything that makes the video unusable.
    """
    import cv2

    name = job.relative
    try:
        size = job.source.stat().st_size
    except OSError as error:
        raise VideoError(f"{name}: cannot read file ({error.strerror or error})") from None
    if size == 0:
        raise VideoError(f"{name}: empty file (0 bytes)")
    capture = cv2.VideoCapture(str(job.source))
    try:
        if not capture.isOpened():
            raise VideoError(f"{name}: not a readable video (OpenCV/FFmpeg cannot open it)")
        declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        position = 0  # frames decoded so far (1-based index of the last one)
        while position < job.frame_start - 1:
            if not capture.grab():
                raise VideoError(f"{name}: index starts at frame {job.frame_start} but the video has "
                                 f"only {position} frames")
            position += 1
        holistic.reset()
        rows, complete = [], []
        while job.frame_end == -1 or position < job.frame_end:
            ok, frame = capture.read()
            if not ok:
                break
            position += 1
            results = holistic.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            rows.append(landmarks_to_vector(results))
            if full:
                complete.append(holistic_points(results, width, height))
    finally:
        capture.release()
    reached_end = job.frame_end == -1 or position < job.frame_end
    if not rows:
        declares = f" (container declares {declared})" if declared > 0 else ""
        raise VideoError(f"{name}: no frame could be decoded{declares}")
    if reached_end and declared > 0 and declared - position > max(1, TRUNCATION_TOLERANCE * declared):
        raise VideoError(f"{name}: truncated or damaged: decoded {position} of the {declared} frames "
                         "the container declares")
    whole = job.frame_start <= 1 and job.frame_end == -1
    if whole and len(rows) == 1 and declared <= 1:
        # FFmpeg decodes a photograph (e.g. a .jpg renamed .mp4) as a one-frame "video"; a sign needs motion.
        raise VideoError(f"{name}: a single still image, not a video (1 frame decoded)")
    raw = np.stack(rows)  # (T, 150)
    pose, left, right = detection_shares(raw)
    row = {
        "video": job.video, "frames": len(raw), "fps": round(fps, 3), "width": width, "height": height,
        "pose_share": round(pose, 4), "left_hand_share": round(left, 4), "right_hand_share": round(right, 4),
        "seconds": round(len(raw) / fps, 3) if fps > 0 else "",
        "frame_start": job.frame_start, "frame_end": job.frame_end,
    }
    whole_result = (np.stack([d for d, _ in complete]), np.stack([c for _, c in complete])) if full else None
    return raw, row, whole_result


# ------------------------------------------------------------------------- records and resuming
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


def write_csv(path: Path, columns: Iterable[str], rows: Iterable[dict]) -> None:
    with atomic_write(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


# ----------------------------------------------------------------------------------- workers
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


# ---------------------------------------------------------------------------------- top level
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
    """Extract every video of (a shard of) a folder; see the module docstring for the rules.

    Raises :class:`UsageError`/:class:`DataError` (exit status 2) for a missing folder, bad
    arguments, a bad index or an unavailable model; bad videos are reported in the summary.
    """
    started = time.perf_counter()
    if isinstance(outputs, str):
        if outputs not in OUTPUTS:
            raise UsageError(f"--format must be one of {', '.join(OUTPUTS)}, got {outputs!r}")
        outputs = OUTPUTS[outputs]
    outputs = tuple(outputs)
    if workers < 0:
        raise UsageError(f"--workers must be >= 0 (0 = in this process), got {workers}")
    extensions = parse_extensions(extensions)
    every = list_videos(videos_folder, extensions, recursive)
    selected = shard(every, num_shards, shard_index)
    if not every:
        raise UsageError(f"no videos with extensions {','.join(extensions)} in {videos_folder}"
                         + ("" if recursive else " (add --recursive to search sub-folders)"))
    trims = load_trims(index) if index is not None else {}
    ensure_pose_model(model_complexity, download)
    output = Path(output_folder)
    try:
        make_folder(output)
    except OSError as error:
        raise UsageError(f"--output-landmarks {output}: cannot create it ({error.filename}: {error.strerror})") from None

    summary = ExtractionSummary(videos=len(selected))
    jobs, owner = [], {}
    for relative in selected:
        vid = video_id(relative, recursive)
        if vid in owner:
            summary.failures.append((vid, f"{relative}: output name {vid}.npy is already used by {owner[vid]}"))
            continue
        owner[vid] = relative
        if index is not None and vid not in trims:
            summary.not_in_index.append(vid)
        start, end = trims.get(vid, (1, -1))
        jobs.append(VideoJob(Path(videos_folder) / relative, relative, vid, start, end))

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

    bar = tqdm(total=len(jobs), initial=len(summary.skipped), unit="video", desc="extracting",
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

    try:
        with logging_redirect_tqdm():
            _run_jobs(pending, workers, model_complexity, output, debug, report, outputs)
    finally:
        bar.close()
        _remove_stale_temporaries(output, (job.video for job in pending))

    summary.no_person = sorted(v for v, row in rows.items() if float(row["pose_share"]) == 0)
    if summary.no_person:
        log.warning("no person detected in %d video(s), written as all-zero landmarks (pose_share 0): %s",
                    len(summary.no_person), ", ".join(summary.no_person))
    if summary.not_in_index:
        log.warning("%d video(s) not in the index %s, extracted whole: %s", len(summary.not_in_index), index,
                    ", ".join(summary.not_in_index[:10]) + (" ..." if len(summary.not_in_index) > 10 else ""))
    suffix = shard_suffix(num_shards, shard_index)
    summary.manifest = output / f"manifest{suffix}.csv"
    summary.failures_file = output / f"failures{suffix}.csv"
    summary.failures.sort()
    write_csv(summary.manifest, MANIFEST_COLUMNS, (rows[v] for v in sorted(rows)))
    write_csv(summary.failures_file, FAILURE_COLUMNS, (dict(zip(FAILURE_COLUMNS, f)) for f in summary.failures))
    summary.extracted.sort()
    summary.seconds = time.perf_counter() - started
    return summary


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


def merge_shards(output_folder: str | os.PathLike) -> MergeSummary:
    """Join every shard's ``manifest-<i>-of-<N>.csv``/``failures-…`` into ``manifest.csv``/``failures.csv``.

    Refuses (UsageError) when shards are missing, disagree on N, or list a video twice.
    """
    output = Path(output_folder)
    if not output.is_dir():
        raise UsageError(f"landmarks folder {output} does not exist or is not a folder")
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


__all__ = [
    "DEFAULT_EXTENSIONS", "MANIFEST_COLUMNS", "FAILURE_COLUMNS", "ExtractionSummary", "MergeSummary",
    "ModelUnavailableError", "VideoError", "VideoJob", "VideoOutcome", "create_holistic", "detection_shares",
    "ensure_pose_model", "extract_landmarks", "extract_video", "landmarks_to_vector", "list_videos",
    "load_trims", "merge_shards", "parse_extensions", "pose_model_path", "process_job", "shard", "video_id",
]
