"""Writers of the field's pose formats, for tests: each turns a raw ``(T, 150)`` clip into files
the way the other tool would have written them (pose-format's own classes, pandas for the
Kaggle schema, plain JSON for OpenPose/MMPose), independently of the project's readers."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from datasets import layout

POSE_NAMES = [n.upper() for n in layout.POSE_LANDMARKS]
HAND_NAMES = [n.upper() for n in layout.HAND_LANDMARKS]
BODY_25 = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
           "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
           "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel")
TO_MEDIAPIPE = {"Nose": "nose", "RShoulder": "right_shoulder", "RElbow": "right_elbow", "RWrist": "right_wrist",
                "LShoulder": "left_shoulder", "LElbow": "left_elbow", "LWrist": "left_wrist", "RHip": "right_hip",
                "RKnee": "right_knee", "RAnkle": "right_ankle", "LHip": "left_hip", "LKnee": "left_knee",
                "LAnkle": "left_ankle", "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear",
                "LEar": "left_ear", "LBigToe": "left_foot_index", "LHeel": "left_heel",
                "RBigToe": "right_foot_index", "RHeel": "right_heel"}
COCO_17 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
           "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
           "right_knee", "left_ankle", "right_ankle")


def groups(raw: np.ndarray):
    """``(T, 33, 2)`` pose, ``(T, 21, 2)`` left and right hand, and their per-frame detected flags."""
    points = raw.reshape(len(raw), layout.NUM_RAW_POINTS, 2).astype(np.float64)
    pose = points[:, :33]
    left, right = points[:, 33:54], points[:, 54:75]
    return [(block, np.any(block != 0, axis=(1, 2))) for block in (pose, left, right)]


def write_pose_file(path: Path, raw: np.ndarray, width: int = 640, height: int = 480, fps: float = 25.0,
                    extra_person: bool = False, openpose: bool = False) -> Path:
    """A ``.pose`` file made with pose-format's classes (Holistic components, or OpenPose's)."""
    from pose_format import Pose
    from pose_format.numpy.pose_body import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    frames = len(raw)
    (pose, pose_seen), (left, left_seen), (right, right_seen) = groups(raw)
    if openpose:
        body = np.zeros((frames, 25, 2))
        seen_body = np.zeros((frames, 25), bool)
        for i, name in enumerate(BODY_25):
            if name in TO_MEDIAPIPE:
                body[:, i] = pose[:, layout.POSE_LANDMARKS.index(TO_MEDIAPIPE[name])]
                seen_body[:, i] = pose_seen
        names = [("pose_keypoints_2d", list(BODY_25)), ("hand_left_keypoints_2d", [f"H{i}" for i in range(21)]),
                 ("hand_right_keypoints_2d", [f"H{i}" for i in range(21)])]
        blocks = [(body, seen_body), (left, np.repeat(left_seen[:, None], 21, 1)),
                  (right, np.repeat(right_seen[:, None], 21, 1))]
        point_format = "XYC"
    else:
        face = np.random.default_rng(0).uniform(0.3, 0.6, (frames, 468, 2))
        names = [("POSE_LANDMARKS", POSE_NAMES), ("FACE_LANDMARKS", [str(i) for i in range(468)]),
                 ("LEFT_HAND_LANDMARKS", HAND_NAMES), ("RIGHT_HAND_LANDMARKS", HAND_NAMES)]
        blocks = [(pose, np.repeat(pose_seen[:, None], 33, 1)), (face, np.ones((frames, 468), bool)),
                  (left, np.repeat(left_seen[:, None], 21, 1)), (right, np.repeat(right_seen[:, None], 21, 1))]
        point_format = "XYZC"
    components = [PoseHeaderComponent(name=n, points=p, limbs=[], colors=[(255, 0, 0)], point_format=point_format)
                  for n, p in names]
    header = PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(width=width, height=height, depth=0),
                        components=components)
    dims = len(point_format) - 1
    xy = np.concatenate([b for b, _ in blocks], axis=1) * np.array([width, height])
    seen = np.concatenate([s for _, s in blocks], axis=1)
    data = np.zeros((frames, 1, xy.shape[1], dims), np.float32)
    data[:, 0, :, :2] = np.where(seen[..., None], xy, 0)
    confidence = seen[:, None].astype(np.float32) * 0.9
    if extra_person:  # a second, less sure person at the picture's edge
        other = data.copy()
        other[..., 0] = other[..., 0] * 0.3
        data = np.concatenate([other, data], axis=1)
        confidence = np.concatenate([confidence * 0.5, confidence], axis=1)
    with open(path, "wb") as handle:
        Pose(header, NumPyPoseBody(fps=fps, data=data, confidence=confidence)).write(handle)
    return path


def write_kaggle_parquet(path: Path, raw: np.ndarray, first_frame: int = 20, shuffle: bool = True) -> Path:
    """One clip in the Kaggle ISLR long form (543 landmarks per frame, NaN where not detected)."""
    rows = []
    for t, ((pose, pose_seen), (left, left_seen), (right, right_seen)) in enumerate(
            zip(*[[(b[i], s[i]) for i in range(len(raw))] for b, s in groups(raw)])):
        frame = first_frame + t
        for kind, block, seen, count in (("face", None, True, 468), ("left_hand", left, left_seen, 21),
                                         ("pose", pose, pose_seen, 33), ("right_hand", right, right_seen, 21)):
            for i in range(count):
                if kind == "face":
                    x, y = 0.4 + 0.0001 * i, 0.3
                else:
                    x, y = (block[i] if seen else (np.nan, np.nan))
                rows.append((frame, f"{frame}-{kind}-{i}", kind, i, x, y, np.nan if not seen else 0.0))
    table = pd.DataFrame(rows, columns=["frame", "row_id", "type", "landmark_index", "x", "y", "z"])
    table["frame"] = table["frame"].astype("int16")
    table["landmark_index"] = table["landmark_index"].astype("int16")
    table[["x", "y", "z"]] = table[["x", "y", "z"]].astype("float32")
    if shuffle:
        table = table.sample(frac=1.0, random_state=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False)
    return path


def openpose_people(raw_frame: np.ndarray, width: int, height: int) -> dict:
    """One frame's OpenPose BODY_25 person (pixels, confidence 0 = not found)."""
    (pose, pose_seen), (left, left_seen), (right, right_seen) = groups(raw_frame[None])
    scale = np.array([width, height])
    body = []
    for name in BODY_25:
        if name in TO_MEDIAPIPE and pose_seen[0]:
            x, y = pose[0, layout.POSE_LANDMARKS.index(TO_MEDIAPIPE[name])] * scale
            body += [float(x), float(y), 0.8]
        elif name == "Neck" and pose_seen[0]:
            x, y = (pose[0, 11] + pose[0, 12]) / 2 * scale
            body += [float(x), float(y), 0.8]
        else:
            body += [0.0, 0.0, 0.0]

    def hand(block, seen):
        return [v for p in block[0] for v in (float(p[0] * width), float(p[1] * height), 0.7)] if seen[0] else [0.0] * 63

    return {"person_id": [-1], "pose_keypoints_2d": body, "face_keypoints_2d": [],
            "hand_left_keypoints_2d": hand(left, left_seen), "hand_right_keypoints_2d": hand(right, right_seen)}


def write_openpose_folder(folder: Path, raw: np.ndarray, width: int = 640, height: int = 480,
                          crowd_frame: int | None = None) -> Path:
    """An OpenPose ``--write_json`` folder: ``<name>_<frame:012d>_keypoints.json`` per frame."""
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(raw):
        people = [openpose_people(frame, width, height)] if np.any(frame != 0) else []
        if crowd_frame == t and people:  # a bystander with a few unsure points
            bystander = {k: ([v * 0 + 0.1 if i % 3 == 2 else v for i, v in enumerate(vals)] if isinstance(vals, list)
                             and k.endswith("2d") else vals) for k, vals in people[0].items()}
            people.insert(0, bystander)
        (folder / f"clip_{t:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    return folder


def write_mmpose_json(path: Path, raw: np.ndarray, width: int = 640, height: int = 480) -> Path:
    """MMPose demo output: ``{"meta_info", "instance_info": [{"frame_id", "instances"}]}``, COCO-WholeBody."""
    frames = []
    scale = np.array([width, height])
    for t, frame in enumerate(raw):
        (pose, pose_seen), (left, left_seen), (right, right_seen) = groups(frame[None])
        points, scores = np.zeros((133, 2)), np.full(133, 0.05)
        for i, name in enumerate(COCO_17):
            points[i] = pose[0, layout.POSE_LANDMARKS.index(name)] * scale
            scores[i] = 0.9 if pose_seen[0] else 0.05
        for start, block, seen in ((91, left, left_seen), (112, right, right_seen)):
            points[start:start + 21] = block[0] * scale
            scores[start:start + 21] = 0.8 if seen[0] else 0.1
        instances = [{"keypoints": points.tolist(), "keypoint_scores": scores.tolist(),
                      "bbox": [[0, 0, width, height]], "bbox_score": 0.99}] if pose_seen[0] else []
        frames.append({"frame_id": t + 1, "instances": instances})
    path.write_text(json.dumps({"meta_info": {"dataset_name": "coco_wholebody"}, "instance_info": frames}))
    return path
