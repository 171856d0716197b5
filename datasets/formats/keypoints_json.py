"""OpenPose and MMPose keypoint JSON ↔ the raw layout.

* **OpenPose** (``--write_json``): a folder with one ``<name>_<frame>_keypoints.json`` per
  frame (read in file-name order, which OpenPose zero-pads), each ``{"people": [{
  "pose_keypoints_2d": [x, y, c, ...], "hand_left_keypoints_2d": [...],
  "hand_right_keypoints_2d": [...]}]}``. BODY_25 (25 points) and COCO (18) bodies are
  understood; a frame without people, or hands not estimated, count as not detected. A
  single such ``.json`` is a one-frame clip.
* **MMPose**: one ``.json`` per video, either ``{"meta_info": ..., "instance_info": [{"frame_id",
  "instances": [...]}]}`` (its demo scripts) or the bare list of frames (its inferencer), each
  instance ``{"keypoints": [[x, y], ...], "keypoint_scores": [...]}`` with COCO-WholeBody's 133
  points or COCO's 17 body points (no hands). A plain list of instances is one frame.

Points with confidence 0 (OpenPose's "not found") or an MMPose score below
:data:`MMPOSE_MIN_SCORE` are not detected. Several people in a frame: the one with the most
total confidence is kept, frame by frame (neither tool tracks identities across frames).
Coordinates are pixels; ``frame_size`` (width, height) makes them image-relative as MediaPipe's
are. Without it, coordinates already within 0..1.5 are taken as image-relative (OpenPose's
``--keypoint_scale 3``), and pixels are divided by the clip's largest coordinate (one factor
for both axes: body and hand shapes keep their proportions, which the normalisation needs).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from datasets import layout
from datasets.errors import DataError
from datasets.formats import OPENPOSE_FRAME_SUFFIX, Clip

log = logging.getLogger(__name__)

MMPOSE_MIN_SCORE = 0.3  # MMPose's own default keypoint threshold for drawing
RELATIVE_LIMIT = 1.5    # coordinates up to this are taken as image-relative already
OPENPOSE_BODIES = {len(layout.OPENPOSE_BODY_25): layout.OPENPOSE_BODY_25,
                   len(layout.OPENPOSE_COCO_18): layout.OPENPOSE_COCO_18}
_warned_scale = False


def _openpose_source(body_points: int) -> np.ndarray:
    """Raw point → index into ``body + left hand + right hand`` of an OpenPose person."""
    names = OPENPOSE_BODIES[body_points]
    return layout.foreign_source_index(names, len(names), len(names) + layout.NUM_HAND)


def _triples(values, count: int, where: str) -> np.ndarray:
    """A flat ``[x, y, c, ...]`` list → ``(count, 3)``; an empty list is all undetected."""
    array = np.asarray(values if values else np.zeros(count * 3), dtype=np.float64)
    if array.shape != (count * 3,):
        raise DataError(f"{where}: expected {count} (x, y, confidence) triples, got {array.size} values")
    return array.reshape(count, 3)


def _openpose_frame(payload, where: str, body_points: int | None) -> tuple[np.ndarray | None, int | None, int]:
    """One OpenPose frame → ``(points + confidence (P, 3)`` of its most confident person or None,
    the body size, people count)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("people"), list):
        raise DataError(f"{where}: not an OpenPose frame (expected an object with a 'people' list)")
    best, best_score = None, -1.0
    for k, person in enumerate(payload["people"]):
        if not isinstance(person, dict) or "pose_keypoints_2d" not in person:
            raise DataError(f"{where}: person {k} has no pose_keypoints_2d")
        values = person["pose_keypoints_2d"]
        size = len(values) // 3 if isinstance(values, list) else -1
        if size not in OPENPOSE_BODIES or len(values) != 3 * size:
            raise DataError(f"{where}: person {k}: pose_keypoints_2d has {len(values) if size >= 0 else '?'} values; "
                            f"expected BODY_25 (75) or COCO (54)")
        if body_points is not None and size != body_points:
            raise DataError(f"{where}: person {k} has {size} body points, earlier frames {body_points}")
        body_points = size
        parts = [_triples(values, size, f"{where}: person {k} pose_keypoints_2d")]
        for hand in ("hand_left_keypoints_2d", "hand_right_keypoints_2d"):
            parts.append(_triples(person.get(hand) or [], layout.NUM_HAND, f"{where}: person {k} {hand}"))
        person_points = np.concatenate(parts)
        score = float(person_points[:, 2].sum())
        if score > best_score:
            best, best_score = person_points, score
    return best, body_points, len(payload["people"])


def _load_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read file ({error})") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: invalid JSON ({error})") from None


def read_openpose_frames(frames: list, where: str, frame_size) -> Clip:
    """Parsed OpenPose frames (``[(where, payload), ...]``) → one clip."""
    body_points, picked, crowded = None, [], 0
    for frame_where, payload in frames:
        person, body_points, people = _openpose_frame(payload, frame_where, body_points)
        picked.append(person)
        crowded += people > 1
    if body_points is None:
        raise DataError(f"{where}: no person in any of its {len(frames)} frames")
    width = body_points + 2 * layout.NUM_HAND
    stacked = np.stack([p if p is not None else np.zeros((width, 3)) for p in picked])
    note = f"{crowded} of {len(frames)} frames had several people; kept the most confident in each" if crowded else ""
    if note:
        log.info("%s: %s", where, note)
    return _to_clip(stacked[..., :2], stacked[..., 2] > 0, _openpose_source(body_points), where, frame_size, note)


def read_openpose_folder(folder: Path, frame_size=None) -> Clip:
    files = sorted(p for p in folder.iterdir() if p.name.endswith(OPENPOSE_FRAME_SUFFIX))
    return read_openpose_frames([(str(p), _load_json(p)) for p in files], str(folder), frame_size)


def _mmpose_frames(payload, where: str) -> list:
    """The list of per-frame instance lists of any MMPose JSON shape."""
    if isinstance(payload, dict) and isinstance(payload.get("instance_info"), list):
        payload = payload["instance_info"]
    if isinstance(payload, list) and all(isinstance(f, dict) and "instances" in f for f in payload):
        return [f["instances"] for f in payload]
    if isinstance(payload, list) and all(isinstance(i, dict) and "keypoints" in i for i in payload):
        return [payload]
    raise DataError(f"{where}: neither OpenPose nor MMPose keypoints (expected 'people', 'instance_info', "
                    "or a list of frames with 'instances')")


def read_mmpose(payload, where: str, frame_size=None) -> Clip:
    frames = _mmpose_frames(payload, where)
    count, source, picked, crowded = None, None, [], 0
    for f, instances in enumerate(frames):
        best, best_score = None, -1.0
        for k, instance in enumerate(instances or []):
            try:
                points = np.asarray(instance["keypoints"], dtype=np.float64)
                scores = np.asarray(instance.get("keypoint_scores", np.ones(len(points))), dtype=np.float64)
            except (KeyError, TypeError, ValueError):
                raise DataError(f"{where}: frame {f} instance {k}: keypoints must be [[x, y], ...] numbers") from None
            if points.ndim != 2 or points.shape[1] < 2 or scores.shape != (len(points),):
                raise DataError(f"{where}: frame {f} instance {k}: keypoints of shape {points.shape} "
                                f"with {scores.size} scores do not fit")
            if count is None:
                count = len(points)
                if count == layout.COCO_WHOLEBODY_POINTS:
                    source = layout.foreign_source_index(layout.COCO_BODY_17, layout.COCO_WHOLEBODY_LEFT_HAND,
                                                         layout.COCO_WHOLEBODY_RIGHT_HAND)
                elif count == len(layout.COCO_BODY_17):
                    source = layout.foreign_source_index(layout.COCO_BODY_17, None, None)
                else:
                    raise DataError(f"{where}: {count} keypoints per person; expected COCO-WholeBody "
                                    f"({layout.COCO_WHOLEBODY_POINTS}) or COCO ({len(layout.COCO_BODY_17)})")
            elif len(points) != count:
                raise DataError(f"{where}: frame {f} instance {k} has {len(points)} keypoints, earlier ones {count}")
            score = float(scores.sum())
            if score > best_score:
                best, best_score = np.column_stack([points[:, :2], scores]), score
        picked.append(best)
        crowded += len(instances or []) > 1
    if count is None:
        raise DataError(f"{where}: no person in any of its {len(frames)} frames")
    stacked = np.stack([p if p is not None else np.zeros((count, 3)) for p in picked])
    note = f"{crowded} of {len(frames)} frames had several people; kept the most confident in each" if crowded else ""
    detected = (stacked[..., 2] >= MMPOSE_MIN_SCORE) & np.array([p is not None for p in picked])[:, None]
    return _to_clip(stacked[..., :2], detected, source, where, frame_size, note)


def read_json_clip(path: Path, frame_size=None) -> Clip:
    """A ``.json`` clip: one OpenPose frame, or an MMPose prediction file."""
    payload = _load_json(path)
    if isinstance(payload, dict) and "people" in payload:
        return read_openpose_frames([(str(path), payload)], str(path), frame_size)
    return read_mmpose(payload, str(path), frame_size)


def _to_clip(points: np.ndarray, detected: np.ndarray, source: np.ndarray, where: str, frame_size, note: str) -> Clip:
    """Pixels → image-relative (see the module doc), then gathered into the raw layout."""
    global _warned_scale
    if frame_size is not None:
        width, height = frame_size
        if width <= 0 or height <= 0:
            raise DataError(f"{where}: frame size {width}x{height} must be positive")
        points = points / np.array([width, height], dtype=np.float64)
    else:
        largest = float(np.abs(points[detected]).max()) if detected.any() else 0.0
        if largest > RELATIVE_LIMIT:
            points = points / largest
            if not _warned_scale:
                log.warning("%s: pixel coordinates without a frame size: both axes scaled by one factor; give "
                            "frame_width/frame_height in the index (or --frame-size WxH) to match MediaPipe's "
                            "per-axis image-relative coordinates", where)
                _warned_scale = True
    return Clip(layout.gather_raw(points, detected, source), note=note)
