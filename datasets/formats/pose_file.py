"""``.pose`` files (the pose-format library's binary format) ↔ the raw layout.

A ``.pose`` file has a header of named components, each with named points, and a body of
``(frames, people, points, dims)`` coordinates in pixels with a ``(frames, people, points)``
confidence (0 = not detected) and its fps. Two component sets are understood: MediaPipe
Holistic's (``POSE_LANDMARKS``, ``LEFT_HAND_LANDMARKS``, ``RIGHT_HAND_LANDMARKS``; face and
world components are ignored) and OpenPose's as pose-format writes it
(``pose_keypoints_2d``, ``hand_left_keypoints_2d``, ``hand_right_keypoints_2d``).

Written files (``preprocessing.py extract --format pose``) have pose-format's full Holistic
header (pose, face, both hands, pose world landmarks), so tools of that ecosystem read them
as their own.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np

from datasets import layout
from datasets.atomic import atomic_write
from datasets.errors import DataError
from datasets.formats import Clip

log = logging.getLogger(__name__)

COMPONENT_SETS = layout.POSE_FILE_COMPONENT_SETS
HOLISTIC_FACE_POINTS = 468
# Holistic components in pose-format's order and their sizes (see holistic_header()).
HOLISTIC_SIZES = (("POSE_LANDMARKS", layout.NUM_POSE), ("FACE_LANDMARKS", HOLISTIC_FACE_POINTS),
                  ("LEFT_HAND_LANDMARKS", layout.NUM_HAND), ("RIGHT_HAND_LANDMARKS", layout.NUM_HAND),
                  ("POSE_WORLD_LANDMARKS", layout.NUM_POSE))
HOLISTIC_POINTS = sum(n for _, n in HOLISTIC_SIZES)  # 576


def _pose_library():
    try:
        from pose_format import Pose
        from pose_format.numpy.pose_body import NumPyPoseBody
    except ImportError:  # pragma: no cover - it is in requirements.txt
        raise DataError("reading or writing .pose files needs the pose-format package (pip install -r requirements.txt)")
    return Pose, NumPyPoseBody


def _body_names(points) -> tuple[str, ...]:
    """OpenPose names as they are; Holistic's upper-case names as the raw layout spells them."""
    return tuple(p if p in layout.OPENPOSE_BODY_25 else str(p).lower() for p in points)


def _source_index(header, path: Path) -> tuple[np.ndarray, str]:
    """Flat point index of every raw point in this header's components, and the set's name."""
    starts, components, offset = {}, {}, 0
    for component in header.components:
        starts[component.name], components[component.name] = offset, component
        offset += len(component.points)
    for set_name, body, left, right in COMPONENT_SETS:
        if body not in components:
            continue
        hands = []
        for name in (left, right):
            if name in components and len(components[name].points) != layout.NUM_HAND:
                raise DataError(f"{path}: component {name} has {len(components[name].points)} points, "
                                f"expected {layout.NUM_HAND}")
            hands.append(starts[name] - starts[body] if name in components else None)
        source = layout.foreign_source_index(_body_names(components[body].points), *hands)
        if (source[layout.RAW_POSE_OFFSET:layout.RAW_LEFT_HAND_OFFSET] < 0).all():
            raise DataError(f"{path}: component {body} has none of the expected body points "
                            f"(got {', '.join(map(str, components[body].points[:5]))}, ...)")
        source[source >= 0] += starts[body]
        return source, set_name
    have = ", ".join(components) or "none"
    expected = " or ".join(f"{body} (+{left}, {right})" for _, body, left, right in COMPONENT_SETS)
    raise DataError(f"{path}: no known body component: expected {expected}; the file has {have}")


def pick_person(confidence: np.ndarray, x: np.ndarray) -> tuple[int, str]:
    """The person with the most total confidence; ties go to the one nearest the centre (x 0.5).

    ``confidence`` is ``(frames, people, points)`` of the mapped points, ``x`` their
    image-relative x. Returns the index and a note saying what was chosen (empty for one person).
    """
    people = confidence.shape[1]
    if people == 1:
        return 0, ""
    total = confidence.sum(axis=(0, 2))
    seen = confidence > 0
    centre = np.abs(np.where(seen, x, 0).sum(axis=(0, 2)) / np.maximum(seen.sum(axis=(0, 2)), 1) - 0.5)
    order = np.lexsort((centre, -total))
    return int(order[0]), f"{people} people; kept person {int(order[0])} (most confident, then most central)"


def read_pose(path: Path) -> Clip:
    """One ``.pose`` file → raw layout; x, y are divided by the header's width and height."""
    Pose, _ = _pose_library()
    try:
        pose = Pose.read(path.read_bytes())
    except OSError as error:
        raise DataError(f"{path}: cannot read file ({error})") from None
    except Exception as error:  # the library raises struct/value/index errors on damaged files
        raise DataError(f"{path}: not a readable .pose file ({type(error).__name__}: {error})") from None
    source, set_name = _source_index(pose.header, path)
    data = np.ma.getdata(pose.body.data)
    confidence = np.asarray(pose.body.confidence, dtype=np.float32)
    if data.ndim != 4 or data.shape[-1] < 2 or confidence.shape != data.shape[:3]:
        raise DataError(f"{path}: body of shape {data.shape} with confidence {confidence.shape} does not fit "
                        "(frames, people, points, dims)")
    width, height = pose.header.dimensions.width, pose.header.dimensions.height
    if width <= 0 or height <= 0:
        raise DataError(f"{path}: header dimensions {width}x{height}: cannot make coordinates image-relative")
    mask = np.ma.getmaskarray(pose.body.data).any(axis=-1)
    detected = (confidence > 0) & ~mask
    points = data[..., :2].astype(np.float64) / np.array([width, height])
    mapped = np.maximum(source, 0)
    person, note = pick_person(np.where(detected, confidence, 0)[:, :, mapped], points[:, :, mapped, 0])
    if note:
        log.info("%s: %s", path, note)
    raw = layout.gather_raw(points[:, person], detected[:, person], source)
    return Clip(raw, fps=float(pose.body.fps) or None, note=note or set_name)


# ------------------------------------------------------------------------------ writing
def holistic_header(width: int, height: int):
    """pose-format's own MediaPipe Holistic header (XYZC points) for a ``width`` × ``height`` video."""
    _pose_library()
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions
    from pose_format.utils.holistic import holistic_components
    return PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(width=width, height=height, depth=0),
                      components=holistic_components("XYZC"))


def raw_to_holistic(raw: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw ``(T, 150)`` → Holistic-header ``(T, 576, 3)`` pixels and ``(T, 576)`` confidence.

    Only what the raw layout holds is filled (pose and hands, x and y); face, depth and
    world landmarks are left undetected. Extraction writes the full Holistic result instead.
    """
    frames = len(raw)
    data = np.zeros((frames, HOLISTIC_POINTS, 3), np.float32)
    confidence = np.zeros((frames, HOLISTIC_POINTS), np.float32)
    points = raw.reshape(frames, layout.NUM_RAW_POINTS, 2)
    starts = dict(zip([n for n, _ in HOLISTIC_SIZES], np.cumsum([0] + [n for _, n in HOLISTIC_SIZES])))
    for name, offset, count in (("POSE_LANDMARKS", layout.RAW_POSE_OFFSET, layout.NUM_POSE),
                                ("LEFT_HAND_LANDMARKS", layout.RAW_LEFT_HAND_OFFSET, layout.NUM_HAND),
                                ("RIGHT_HAND_LANDMARKS", layout.RAW_RIGHT_HAND_OFFSET, layout.NUM_HAND)):
        block = points[:, offset:offset + count]
        start = starts[name]
        data[:, start:start + count, :2] = block * np.array([width, height], np.float32)
        confidence[:, start:start + count] = (~layout.missing_mask(block)).astype(np.float32)
    return data, confidence


def encode_pose(data: np.ndarray, confidence: np.ndarray, fps: float, width: int, height: int) -> bytes:
    """``(T, 576, 3)`` Holistic pixels + ``(T, 576)`` confidence → the bytes of a ``.pose`` file."""
    Pose, NumPyPoseBody = _pose_library()
    header = holistic_header(width, height)
    if data.shape[1:] != (header.total_points(), 3) or confidence.shape != data.shape[:2]:
        raise ValueError(f"expected ({header.total_points()}, 3) points per frame, got {data.shape}")
    body = NumPyPoseBody(fps=float(fps), data=data[:, None].astype(np.float32),
                         confidence=confidence[:, None].astype(np.float32))
    buffer = io.BytesIO()
    Pose(header, body).write(buffer)
    return buffer.getvalue()


def write_pose(path: Path, data: np.ndarray, confidence: np.ndarray, fps: float, width: int, height: int) -> None:
    """Write a Holistic ``.pose`` file atomically (see :func:`encode_pose`)."""
    payload = encode_pose(data, confidence, fps, width, height)
    with atomic_write(path, "wb") as handle:
        handle.write(payload)


def pose_frame_count(path: Path) -> int | None:
    """Frames of a readable ``.pose`` file (None when it cannot be read): for resuming extraction."""
    try:
        return len(read_pose(path).raw)
    except DataError:
        return None
