"""MediaPipe Holistic for one video: the pose model on disk, the graph, frames → landmark arrays.

Only the bundled ``model_complexity=1`` pose model is guaranteed offline; :func:`ensure_pose_model`
checks (and, for 0 and 2, fetches) the model before any worker starts. :func:`extract_video` resets
the tracker before every video (package docstring, *Determinism*) and raises :class:`VideoError`
for the videos the package docstring lists under *Failures*.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
from itertools import chain
from pathlib import Path
from typing import Callable

import numpy as np

from datasets import layout
from datasets.errors import UsageError
from datasets.extraction.jobs import VideoError, VideoJob
from datasets.formats import pose_file

log = logging.getLogger(__package__)  # one logger for the whole package, as before the split

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
# (results attribute, points, confidence from visibility) in pose-format's Holistic order
_HOLISTIC_GROUPS = (("pose_landmarks", layout.NUM_POSE, True), ("face_landmarks", pose_file.HOLISTIC_FACE_POINTS, False),
                    ("left_hand_landmarks", layout.NUM_HAND, False), ("right_hand_landmarks", layout.NUM_HAND, False),
                    ("pose_world_landmarks", layout.NUM_POSE, True))


class ModelUnavailableError(UsageError):
    """The requested model complexity needs a pose model that is neither bundled nor downloadable."""


# ------------------------------------------------------------------------------- the pose model
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


# ------------------------------------------------------------------------- results → arrays
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


# ------------------------------------------------------------------------------- one video
def extract_video(job: VideoJob, holistic, full: bool = False) -> tuple[np.ndarray, dict, tuple | None]:
    """Run one video through ``holistic`` (reset first); returns ``(T, 150)``, its manifest row and,
    when ``full``, the whole Holistic result per frame (see :func:`holistic_points`), else None.

    Raises :class:`VideoError` for anything that makes the video unusable.
    """
    import cv2

    _check_file(job)
    capture = cv2.VideoCapture(str(job.source))
    try:
        if not capture.isOpened():
            raise VideoError(f"{job.relative}: not a readable video (OpenCV/FFmpeg cannot open it)")
        declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        position, rows, complete = _decode(capture, job, holistic, full, width, height)
    finally:
        capture.release()
    _check_decoded(job, len(rows), position, declared)
    raw = np.stack(rows)  # (T, 150)
    whole_result = (np.stack([d for d, _ in complete]), np.stack([c for _, c in complete])) if full else None
    return raw, _manifest_row(job, raw, fps, width, height), whole_result


def _check_file(job: VideoJob) -> None:
    """Refuse a video file that cannot be read or is empty, before OpenCV sees it."""
    try:
        size = job.source.stat().st_size
    except OSError as error:
        raise VideoError(f"{job.relative}: cannot read file ({error.strerror or error})") from None
    if size == 0:
        raise VideoError(f"{job.relative}: empty file (0 bytes)")


def _decode(capture, job: VideoJob, holistic, full: bool, width: int, height: int) -> tuple[int, list, list]:
    """Skip to the trim's first frame, reset the tracker, run the kept frames through ``holistic``.

    Returns the 1-based index of the last frame decoded, the raw rows and (when ``full``) the
    whole results per frame.
    """
    import cv2

    position = 0  # frames decoded so far (1-based index of the last one)
    while position < job.frame_start - 1:
        if not capture.grab():
            raise VideoError(f"{job.relative}: index starts at frame {job.frame_start} but the video has "
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
    return position, rows, complete


def _check_decoded(job: VideoJob, decoded: int, position: int, declared: int) -> None:
    """Refuse a video that gave no frame, stopped short of what its container declares, or is a still."""
    name = job.relative
    reached_end = job.frame_end == -1 or position < job.frame_end
    if not decoded:
        declares = f" (container declares {declared})" if declared > 0 else ""
        raise VideoError(f"{name}: no frame could be decoded{declares}")
    if reached_end and declared > 0 and declared - position > max(1, TRUNCATION_TOLERANCE * declared):
        raise VideoError(f"{name}: truncated or damaged: decoded {position} of the {declared} frames "
                         "the container declares")
    whole = job.frame_start <= 1 and job.frame_end == -1
    if whole and decoded == 1 and declared <= 1:
        # FFmpeg decodes a photograph (e.g. a .jpg renamed .mp4) as a one-frame "video"; a sign needs motion.
        raise VideoError(f"{name}: a single still image, not a video (1 frame decoded)")


def _manifest_row(job: VideoJob, raw: np.ndarray, fps: float, width: int, height: int) -> dict:
    """The video's ``manifest.csv`` row (columns: :data:`datasets.extraction.manifest.MANIFEST_COLUMNS`)."""
    pose, left, right = detection_shares(raw)
    return {
        "video": job.video, "frames": len(raw), "fps": round(fps, 3), "width": width, "height": height,
        "pose_share": round(pose, 4), "left_hand_share": round(left, 4), "right_hand_share": round(right, 4),
        "seconds": round(len(raw) / fps, 3) if fps > 0 else "",
        "frame_start": job.frame_start, "frame_end": job.frame_end,
    }


__all__ = ["BUNDLED_COMPLEXITY", "POSE_MODELS", "TRUNCATION_TOLERANCE", "ModelUnavailableError", "create_holistic",
           "detection_shares", "ensure_pose_model", "extract_video", "holistic_points", "landmarks_to_vector",
           "pose_model_path"]
