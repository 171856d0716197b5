"""The one definition of every landmark layout the project uses.

Two layouts exist:

* **raw** – what extraction writes to disk and what ``real-dev`` style folders hold:
  MediaPipe Holistic's 33 pose + 21 left-hand + 21 right-hand landmarks, x then y
  per point, as a float32 ``(T, 150)`` array; a group that was not detected is 0.
* **spoter** – the 54 points SPOTER was published with: 12 body points followed by
  21 points per hand (left, then right). Column names follow the published CSVs
  (``leftEar_X``, ``indexTip_left_Y``) so those files load unchanged.

Everything else (datasets, augmentation, models, export, the web page through
:func:`layout_spec`) imports these constants instead of restating them.
"""
from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------- raw layout
POSE_LANDMARKS = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
HAND_LANDMARKS = (
    "wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_finger_mcp", "index_finger_pip", "index_finger_dip", "index_finger_tip",
    "middle_finger_mcp", "middle_finger_pip", "middle_finger_dip", "middle_finger_tip",
    "ring_finger_mcp", "ring_finger_pip", "ring_finger_dip", "ring_finger_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)
NUM_POSE = len(POSE_LANDMARKS)  # 33
NUM_HAND = len(HAND_LANDMARKS)  # 21
POSE_INDEX = {name: i for i, name in enumerate(POSE_LANDMARKS)}  # name -> raw pose index
HAND_INDEX = {name: i for i, name in enumerate(HAND_LANDMARKS)}  # name -> index within a hand
RAW_POSE_OFFSET = 0
RAW_LEFT_HAND_OFFSET = NUM_POSE
RAW_RIGHT_HAND_OFFSET = NUM_POSE + NUM_HAND
NUM_RAW_POINTS = NUM_POSE + 2 * NUM_HAND  # 75
NUM_COORDS = 2  # x, y
RAW_FEATURES = NUM_RAW_POINTS * NUM_COORDS  # 150

# ------------------------------------------------------------------ SPOTER layout
BODY_POINTS = (
    "nose", "neck", "rightEye", "leftEye", "rightEar", "leftEar",
    "rightShoulder", "leftShoulder", "rightElbow", "leftElbow", "rightWrist", "leftWrist",
)
HAND_POINTS = (
    "wrist", "indexTip", "indexDIP", "indexPIP", "indexMCP",
    "middleTip", "middleDIP", "middlePIP", "middleMCP",
    "ringTip", "ringDIP", "ringPIP", "ringMCP",
    "littleTip", "littleDIP", "littlePIP", "littleMCP",
    "thumbTip", "thumbIP", "thumbMP", "thumbCMC",
)
POINT_NAMES = BODY_POINTS + tuple(f"{p}_left" for p in HAND_POINTS) + tuple(f"{p}_right" for p in HAND_POINTS)
NUM_BODY = len(BODY_POINTS)  # 12
NUM_POINTS = len(POINT_NAMES)  # 54
BODY_SLICE = slice(0, NUM_BODY)
LEFT_HAND_SLICE = slice(NUM_BODY, NUM_BODY + NUM_HAND)
RIGHT_HAND_SLICE = slice(NUM_BODY + NUM_HAND, NUM_POINTS)
HAND_SLICES = (LEFT_HAND_SLICE, RIGHT_HAND_SLICE)
COORD_NAMES = ("X", "Y")
COLUMN_NAMES = tuple(f"{p}_{c}" for p in POINT_NAMES for c in COORD_NAMES)


def point_index(name: str) -> int:
    """Index of a SPOTER point by its published name (``"leftWrist"``, ``"thumbTip_right"``)."""
    try:
        return POINT_NAMES.index(name)
    except ValueError:
        raise KeyError(f"unknown landmark {name!r}; known: {', '.join(POINT_NAMES)}") from None


NOSE, NECK = point_index("nose"), point_index("neck")
LEFT_EYE, RIGHT_EYE = point_index("leftEye"), point_index("rightEye")
LEFT_SHOULDER, RIGHT_SHOULDER = point_index("leftShoulder"), point_index("rightShoulder")
LEFT_ELBOW, RIGHT_ELBOW = point_index("leftElbow"), point_index("rightElbow")
LEFT_WRIST, RIGHT_WRIST = point_index("leftWrist"), point_index("rightWrist")

# Which raw point feeds each SPOTER body point (the neck has none: it is derived).
_BODY_FROM_POSE = {
    "nose": "nose", "rightEye": "right_eye", "leftEye": "left_eye", "rightEar": "right_ear",
    "leftEar": "left_ear", "rightShoulder": "right_shoulder", "leftShoulder": "left_shoulder",
    "rightElbow": "right_elbow", "leftElbow": "left_elbow", "rightWrist": "right_wrist",
    "leftWrist": "left_wrist",
}
_HAND_FROM_MEDIAPIPE = {
    "wrist": "wrist", "indexTip": "index_finger_tip", "indexDIP": "index_finger_dip",
    "indexPIP": "index_finger_pip", "indexMCP": "index_finger_mcp",
    "middleTip": "middle_finger_tip", "middleDIP": "middle_finger_dip",
    "middlePIP": "middle_finger_pip", "middleMCP": "middle_finger_mcp",
    "ringTip": "ring_finger_tip", "ringDIP": "ring_finger_dip", "ringPIP": "ring_finger_pip",
    "ringMCP": "ring_finger_mcp", "littleTip": "pinky_tip", "littleDIP": "pinky_dip",
    "littlePIP": "pinky_pip", "littleMCP": "pinky_mcp", "thumbTip": "thumb_tip",
    "thumbIP": "thumb_ip", "thumbMP": "thumb_mcp", "thumbCMC": "thumb_cmc",
}


def _raw_source_indices() -> np.ndarray:
    """For each SPOTER point, the raw point it copies (-1 for the derived neck)."""
    sources = []
    for name in BODY_POINTS:
        sources.append(-1 if name == "neck" else POSE_LANDMARKS.index(_BODY_FROM_POSE[name]))
    for offset in (RAW_LEFT_HAND_OFFSET, RAW_RIGHT_HAND_OFFSET):
        sources.extend(offset + HAND_LANDMARKS.index(_HAND_FROM_MEDIAPIPE[p]) for p in HAND_POINTS)
    return np.asarray(sources, dtype=np.int64)


RAW_SOURCE_INDEX = _raw_source_indices()
RAW_LEFT_SHOULDER = POSE_LANDMARKS.index("left_shoulder")
RAW_RIGHT_SHOULDER = POSE_LANDMARKS.index("right_shoulder")


def _twin(name: str) -> str:
    """The name of a point's left/right twin in either layout (``leftEye``, ``indexTip_left``,
    ``left_elbow``, ``mouth_left``); points on the midline are their own twin."""
    for a, b in (("left", "right"), ("right", "left")):
        if name.endswith(f"_{a}"):
            return name[: -len(a)] + b
        if name.startswith(a):
            return b + name[len(a):]
    return name


def _mirror_permutation(names: tuple[str, ...]) -> np.ndarray:
    """Permutation that swaps every left point of ``names`` with its right twin."""
    return np.asarray([names.index(_twin(n)) for n in names], dtype=np.int64)


MIRROR_PERMUTATION = _mirror_permutation(POINT_NAMES)  # SPOTER layout: body sides and hands
POSE_MIRROR_PERMUTATION = _mirror_permutation(POSE_LANDMARKS)  # the 33 raw pose points


def missing_mask(points: np.ndarray) -> np.ndarray:
    """True where a point was not detected, i.e. both coordinates are exactly 0."""
    return np.all(points == 0, axis=-1)


def raw_to_spoter(raw: np.ndarray) -> np.ndarray:
    """Map raw Holistic frames ``(..., 150)`` to SPOTER points ``(..., 54, 2)``.

    Vectorised gather; the neck is the midpoint of the shoulders only where both
    shoulders were detected, otherwise it stays missing (0, 0).
    """
    raw = np.asarray(raw, dtype=np.float32)
    if raw.shape[-1] != RAW_FEATURES:
        raise ValueError(f"expected raw landmarks with {RAW_FEATURES} values per frame, got shape {raw.shape}")
    points = raw.reshape(*raw.shape[:-1], NUM_RAW_POINTS, NUM_COORDS)
    out = points[..., np.maximum(RAW_SOURCE_INDEX, 0), :].copy()
    left, right = points[..., RAW_LEFT_SHOULDER, :], points[..., RAW_RIGHT_SHOULDER, :]
    both = ~(missing_mask(left) | missing_mask(right))
    out[..., NECK, :] = np.where(both[..., None], (left + right) / 2, 0.0)
    return out


# ------------------------------------------- other tools' keypoints → the raw layout
# Readers of foreign formats (datasets/formats/) gather through these tables and nothing
# else. Every format below orders a hand's 21 points as MediaPipe does (wrist, thumb
# CMC..tip, index MCP..tip, middle, ring, little), so hands map point for point; only the
# body points need a table. "Left" is the signer's left everywhere, as in MediaPipe.
OPENPOSE_BODY_25 = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
OPENPOSE_COCO_18 = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
)
# COCO body order (MMPose, COCO-WholeBody's first 17 points); its names are MediaPipe's.
COCO_BODY_17 = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
COCO_WHOLEBODY_POINTS = 133  # 17 body, 6 feet, 68 face, 21 left hand, 21 right hand
COCO_WHOLEBODY_LEFT_HAND, COCO_WHOLEBODY_RIGHT_HAND = 91, 112
_OPENPOSE_TO_POSE = {
    "Nose": "nose", "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear", "LEar": "left_ear",
    "RShoulder": "right_shoulder", "LShoulder": "left_shoulder", "RElbow": "right_elbow",
    "LElbow": "left_elbow", "RWrist": "right_wrist", "LWrist": "left_wrist", "RHip": "right_hip",
    "LHip": "left_hip", "RKnee": "right_knee", "LKnee": "left_knee", "RAnkle": "right_ankle",
    "LAnkle": "left_ankle", "RHeel": "right_heel", "LHeel": "left_heel",
    "RBigToe": "right_foot_index", "LBigToe": "left_foot_index",
}


# .pose files (pose-format): (name, body component, left hand, right hand) of each component
# set understood; the body component's point names are MediaPipe's in upper case, or OpenPose's.
POSE_FILE_COMPONENT_SETS = (
    ("MediaPipe Holistic", "POSE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS"),
    ("OpenPose", "pose_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d"),
)


def pose_file_body_names() -> dict[str, int]:
    """Body point names a ``.pose`` component may use → raw pose point index (for the web page too)."""
    names = {name.upper(): i for i, name in enumerate(POSE_LANDMARKS)}
    names.update({name: POSE_LANDMARKS.index(pose) for name, pose in _OPENPOSE_TO_POSE.items()})
    return names


def foreign_source_index(body_names: tuple[str, ...], left_hand: int | None, right_hand: int | None) -> np.ndarray:
    """For each raw point, its index in a format's flat point list (-1: that format has none).

    ``body_names`` are the format's body points in order (OpenPose names, or MediaPipe
    names for COCO and Holistic); ``left_hand``/``right_hand`` are where its 21-point hands
    start in the same list (None: no hands).
    """
    source = np.full(NUM_RAW_POINTS, -1, dtype=np.int64)
    for i, name in enumerate(body_names):
        pose_name = _OPENPOSE_TO_POSE.get(name, name if name in POSE_LANDMARKS else None)
        if pose_name is not None:
            source[RAW_POSE_OFFSET + POSE_LANDMARKS.index(pose_name)] = i
    for start, offset in ((left_hand, RAW_LEFT_HAND_OFFSET), (right_hand, RAW_RIGHT_HAND_OFFSET)):
        if start is not None:
            source[offset:offset + NUM_HAND] = np.arange(start, start + NUM_HAND)
    return source


def gather_raw(points: np.ndarray, detected: np.ndarray, source: np.ndarray) -> np.ndarray:
    """A format's ``(T, P, 2)`` points and ``(T, P)`` detected flags → raw ``(T, 150)`` float32.

    Points the format lacks (``source`` -1) and points not detected become 0, the raw
    layout's "not detected".
    """
    safe = np.maximum(source, 0)
    keep = detected[:, safe] & (source >= 0)[None, :]
    raw = np.where(keep[..., None], points[:, safe, :], 0.0).astype(np.float32)
    return raw.reshape(len(points), RAW_FEATURES)


def layout_spec() -> dict:
    """Plain-data description of the layouts, for ``model.json`` and the web page."""
    return {
        "raw": {
            "features_per_frame": RAW_FEATURES,
            "pose_points": list(POSE_LANDMARKS),
            "hand_points": list(HAND_LANDMARKS),
            "left_hand_offset": RAW_LEFT_HAND_OFFSET,
            "right_hand_offset": RAW_RIGHT_HAND_OFFSET,
            "missing_value": 0.0,
        },
        "spoter": {
            "point_names": list(POINT_NAMES),
            "num_points": NUM_POINTS,
            "body_slice": [BODY_SLICE.start, BODY_SLICE.stop],
            "left_hand_slice": [LEFT_HAND_SLICE.start, LEFT_HAND_SLICE.stop],
            "right_hand_slice": [RIGHT_HAND_SLICE.start, RIGHT_HAND_SLICE.stop],
            "raw_source_index": RAW_SOURCE_INDEX.tolist(),
            "neck": {"index": NECK, "from_raw": [RAW_LEFT_SHOULDER, RAW_RIGHT_SHOULDER]},
            "mirror_permutation": MIRROR_PERMUTATION.tolist(),
            "indices": {
                "nose": NOSE, "neck": NECK, "left_eye": LEFT_EYE, "right_eye": RIGHT_EYE,
                "left_shoulder": LEFT_SHOULDER, "right_shoulder": RIGHT_SHOULDER,
                "left_elbow": LEFT_ELBOW, "right_elbow": RIGHT_ELBOW,
                "left_wrist": LEFT_WRIST, "right_wrist": RIGHT_WRIST,
            },
        },
        "pose_file": {
            "component_sets": [list(c) for c in POSE_FILE_COMPONENT_SETS],
            "body_names": pose_file_body_names(),
        },
    }
