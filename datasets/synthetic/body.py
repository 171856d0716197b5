"""The body around the hands: arms by inverse kinematics, the face template, the lower body.

Coordinates are in the body frame (origin between the shoulders, unit = shoulder
width, y down, z towards the camera), own side = the right.
"""
from __future__ import annotations

import numpy as np

from datasets import layout
from datasets.synthetic.signers import SignerProfile

def arm_elbows(shoulders: np.ndarray, wrists: np.ndarray, upper: float, fore: float) -> np.ndarray:
    """Elbows ``(..., 3)`` by 3-D two-link IK, the elbow swung as far down and out as it goes."""
    d = wrists - shoulders
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    dist = np.maximum(dist, 1e-6)
    axis = d / dist
    reach = np.minimum(dist, upper + fore - 1e-6)
    cos_a = np.clip((upper ** 2 + reach ** 2 - fore ** 2) / (2 * upper * reach), -1.0, 1.0)
    sin_a = np.sqrt(1 - cos_a ** 2)
    hint = np.array([-0.35, 1.0, 0.5])  # down, a little outward (right arm) and forward
    swing = hint - np.sum(hint * axis, -1, keepdims=True) * axis
    swing /= np.maximum(np.linalg.norm(swing, axis=-1, keepdims=True), 1e-9)
    return shoulders + upper * (cos_a * axis + sin_a * swing)


# ------------------------------------------------------------ face and lower body
_FACE = ("nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
         "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right")
# (x, y relative to the nose, depth towards camera) in head units.
FACE_TEMPLATE = np.array([
    (0.0, 0.0, 1.0), (0.05, -0.07, 0.7), (0.1, -0.075, 0.65), (0.14, -0.07, 0.55),
    (-0.05, -0.07, 0.7), (-0.1, -0.075, 0.65), (-0.14, -0.07, 0.55),
    (0.19, -0.035, 0.0), (-0.19, -0.035, 0.0), (0.065, 0.11, 0.75), (-0.065, 0.11, 0.75)])
FACE_INDEX = np.array([layout.POSE_INDEX[n] for n in _FACE])
_LOWER = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
          "left_heel", "right_heel", "left_foot_index", "right_foot_index")
LOWER_INDEX = np.array([layout.POSE_INDEX[n] for n in _LOWER])


def lower_body(signer: SignerProfile) -> np.ndarray:
    half, hip_y = signer.hip
    if signer.seated:  # thighs towards the camera: knees and feet appear not far below the hips
        ys = (hip_y, hip_y + 0.55, hip_y + 1.5, hip_y + 1.6, hip_y + 1.65)
    else:
        ys = (hip_y, hip_y + 1.15, hip_y + 2.25, hip_y + 2.35, hip_y + 2.4)
    xs = (half, half * 0.95, half * 0.9, half * 0.85, half * 1.05)
    rows = []
    for x, y in zip(xs, ys):
        rows.extend([(x, y), (-x, y)])
    return np.array(rows)
