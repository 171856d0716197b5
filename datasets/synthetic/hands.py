"""The hand model: 21 MediaPipe hand landmarks from 17 handshape parameters and three angles.

A canonical right hand is built in palm-length units (wrist -> middle MCP = 1): a
palm with four MCP joints, three segments per finger bending in the plane of the
finger's splay and the palm normal, and an opposable thumb. It is rotated in 3-D
and later projected orthographically. Handshapes are linear in their parameters so
two of them can be blended over time.
"""
from __future__ import annotations

import numpy as np

from datasets import layout

DEG = np.pi / 180.0  # degrees -> radians; every angle in the generator's tables is in degrees

# Canonical right hand, palm-length units (wrist -> middle MCP = 1), palm facing the
# camera, fingers up: u = thumb side = +x, v = finger direction = -y, palm normal = -z.
_MCP_U = np.array([0.36, 0.12, -0.12, -0.34])   # index, middle, ring, pinky
_MCP_V = np.array([0.95, 1.00, 0.94, 0.84])
_FINGER_SEGMENTS = np.array([                       # proximal, middle, distal phalanx
    [0.46, 0.27, 0.20], [0.52, 0.31, 0.21], [0.48, 0.30, 0.20], [0.37, 0.22, 0.19]])
_SPLAY_CLOSED = np.array([2.0, 0.0, -2.0, -5.0]) * DEG    # finger splay at spread 0
_SPLAY_OPEN = np.array([18.0, -3.0, -14.0, -26.0]) * DEG  # ... at spread 1
_THUMB_CMC = np.array([0.22, 0.20])                 # (u, v)
_THUMB_SEGMENTS = np.array([0.45, 0.34, 0.28])      # metacarpal, proximal, distal
_THUMB_BASE_ANGLE = 20.0 * DEG                     # metacarpal angle from v at abduction 0
PALM_POINTS = [layout.HAND_INDEX["wrist"], layout.HAND_INDEX["index_finger_mcp"], layout.HAND_INDEX["pinky_mcp"]]  # their mean = palm centre

# A handshape is 17 numbers, linear so shapes can be blended over time:
# [4 fingers x (MCP, PIP, DIP) flexion in degrees] + [spread 0..1] +
# [thumb abduction, opposition, MCP flexion, IP flexion in degrees].
_EXT, _FIST = (0, 0, 0), (88, 100, 65)


def _shape(index, middle, ring, pinky, spread, thumb) -> np.ndarray:
    return np.array([*index, *middle, *ring, *pinky, spread, *thumb], dtype=np.float64)


_THUMB_ACROSS = (10, 60, 40, 40)  # thumb folded over the curled fingers
HANDSHAPES: dict[str, np.ndarray] = {
    "B": _shape(_EXT, _EXT, _EXT, _EXT, 0.0, (-5, 55, 25, 20)),
    "5": _shape(_EXT, _EXT, _EXT, _EXT, 1.0, (50, 0, 5, 5)),
    "A": _shape(_FIST, _FIST, _FIST, _FIST, 0.0, (0, 0, 0, 0)),
    "S": _shape(_FIST, _FIST, _FIST, _FIST, 0.0, (15, 55, 40, 35)),
    "1": _shape(_EXT, _FIST, _FIST, _FIST, 0.0, _THUMB_ACROSS),
    "V": _shape(_EXT, _EXT, _FIST, _FIST, 1.0, _THUMB_ACROSS),
    "U": _shape(_EXT, _EXT, _FIST, _FIST, 0.0, _THUMB_ACROSS),
    "W": _shape(_EXT, _EXT, _EXT, _FIST, 1.0, (15, 70, 45, 40)),
    "Y": _shape(_FIST, _FIST, _FIST, _EXT, 1.0, (60, 0, 0, 0)),
    "ILY": _shape(_EXT, _FIST, _FIST, _EXT, 1.0, (60, 0, 0, 0)),
    "L": _shape(_EXT, _FIST, _FIST, _FIST, 0.0, (80, 0, 0, 0)),
    "C": _shape((35, 50, 25), (35, 50, 25), (35, 50, 25), (35, 50, 25), 0.2, (35, 45, 15, 15)),
    "O": _shape((45, 75, 45), (45, 75, 45), (45, 75, 45), (45, 75, 45), 0.0, (20, 70, 20, 25)),
    "claw": _shape((15, 75, 55), (15, 75, 55), (15, 75, 55), (15, 75, 55), 1.0, (45, 20, 25, 30)),
    "flat_O": _shape((60, 20, 10), (60, 20, 10), (60, 20, 10), (60, 20, 10), 0.0, (15, 70, 10, 10)),
    "bent_B": _shape((80, 5, 0), (80, 5, 0), (80, 5, 0), (80, 5, 0), 0.0, (0, 30, 10, 10)),
    "X": _shape((15, 90, 60), _FIST, _FIST, _FIST, 0.0, _THUMB_ACROSS),
    "F": _shape((45, 75, 45), _EXT, _EXT, _EXT, 1.0, (20, 70, 20, 25)),
}
SHAPE_JITTER = np.r_[np.ones(12), 0.0, np.ones(4)]  # no jitter on the spread parameter
# Anatomical limits of the handshape parameters (finger joints, spread, thumb).
SHAPE_LOW = np.r_[np.full(12, -10.0), 0.0, -20.0, -10.0, -10.0, -15.0]
SHAPE_HIGH = np.r_[np.tile([100.0, 115.0, 80.0], 4), 1.0, 100.0, 90.0, 80.0, 90.0]
LAX = _shape((15, 22, 10), (18, 25, 12), (20, 28, 12), (22, 30, 14), 0.3, (30, 20, 10, 10))
SIGN_HANDSHAPES = tuple(HANDSHAPES)
HANDSHAPE_WEIGHTS = np.array([3, 3, 2, 2, 3, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1], dtype=float)
EXTENDED_JOINT = 30.0  # joints flexed less than this (degrees) count as "extended" for laxness


def _rotations(roll, pitch, yaw) -> np.ndarray:
    """``Rz(roll) @ Rx(pitch) @ Ry(yaw)`` for arrays of angles (radians) -> ``(N, 3, 3)``."""
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    # Rx @ Ry written out, then Rz applied.
    m = np.empty(roll.shape + (3, 3))
    xy = np.stack([
        np.stack([cy, np.zeros_like(cy), sy], -1),
        np.stack([sp * sy, cp, -sp * cy], -1),
        np.stack([-cp * sy, sp, cp * cy], -1),
    ], -2)
    m[..., 0, :] = cr[..., None] * xy[..., 0, :] - sr[..., None] * xy[..., 1, :]
    m[..., 1, :] = sr[..., None] * xy[..., 0, :] + cr[..., None] * xy[..., 1, :]
    m[..., 2, :] = xy[..., 2, :]
    return m


def hand_points(shape: np.ndarray, roll, pitch, yaw, proportions=None) -> np.ndarray:
    """21 right-hand landmarks ``(N, 21, 3)`` in palm lengths, wrist at the origin.

    ``shape`` is ``(N, 17)`` handshape parameters (see :data:`HANDSHAPES`); angles are
    radians: roll turns the hand in the image plane (0 = fingers up, positive = towards
    image right), pitch tips the fingers towards the camera, yaw turns the palm about
    the finger axis (0 = palm to camera, 180 degrees = back of the hand to camera).
    ``proportions`` optionally scales the finger segment lengths ``(4,)``.
    """
    shape = np.atleast_2d(shape)
    n = len(shape)
    scale = np.ones(4) if proportions is None else np.asarray(proportions)
    flex = shape[:, :12].reshape(n, 4, 3) * DEG                        # (N, 4, 3)
    spread = shape[:, 12:13]
    splay = _SPLAY_CLOSED + spread * (_SPLAY_OPEN - _SPLAY_CLOSED)       # (N, 4)
    # Finger chains bend in the plane of their splayed direction f and the palm normal.
    f = np.stack([np.sin(splay), -np.cos(splay), np.zeros_like(splay)], -1)  # (N, 4, 3)
    normal = np.array([0.0, 0.0, -1.0])
    theta = np.cumsum(flex, axis=-1)[..., None]                              # (N, 4, 3, 1)
    directions = np.cos(theta) * f[:, :, None, :] + np.sin(theta) * normal   # (N, 4, 3, 3)
    segments = (_FINGER_SEGMENTS * scale[:, None])[None, :, :, None] * directions
    mcp = np.stack([_MCP_U, -_MCP_V, np.zeros(4)], -1)                       # (4, 3)
    joints = mcp[None, :, None, :] + np.cumsum(segments, axis=2)            # (N, 4, 3, 3)
    fingers = np.concatenate([np.broadcast_to(mcp[None, :, None, :], (n, 4, 1, 3)), joints], axis=2)

    abduction, opposition = (_THUMB_BASE_ANGLE + shape[:, 13] * DEG), shape[:, 14] * DEG
    base = np.stack([np.cos(opposition) * np.sin(abduction), -np.cos(opposition) * np.cos(abduction),
                     -np.sin(opposition)], -1)                                # (N, 3)
    bend = np.array([-1.0, 0.0, -0.6]) - (base @ np.array([-1.0, 0.0, -0.6]))[:, None] * base
    bend /= np.linalg.norm(bend, axis=-1, keepdims=True)
    thumb_theta = np.stack([np.zeros(n), shape[:, 15], shape[:, 15] + shape[:, 16]], -1)[..., None] * DEG
    thumb_dirs = np.cos(thumb_theta) * base[:, None, :] + np.sin(thumb_theta) * bend[:, None, :]
    cmc = np.array([_THUMB_CMC[0], -_THUMB_CMC[1], 0.0])
    thumb = cmc + np.cumsum(_THUMB_SEGMENTS[None, :, None] * thumb_dirs, axis=1)  # (N, 3, 3)

    points = np.concatenate([
        np.zeros((n, 1, 3)), np.broadcast_to(cmc, (n, 1, 3)), thumb, fingers.reshape(n, 16, 3)], axis=1)
    rotation = _rotations(np.broadcast_to(roll, (n,)), np.broadcast_to(pitch, (n,)), np.broadcast_to(yaw, (n,)))
    return np.matmul(points, rotation.transpose(0, 2, 1))
