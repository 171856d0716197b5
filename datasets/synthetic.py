"""Synthetic sign-language landmark sequences: the default dataset and the test fixture source.

Each class is a *sign recipe* (where the dominant hand goes, along which path, with
which handshapes and palm orientations, one- or two-handed, head movement) drawn
from the class seed; a fraction of classes are one-parameter variants of an earlier
class (same path but another handshape, reversed order, another location, ...) so
that telling classes apart needs the details a sequence model must learn. Each
signer has their own body proportions, framing, speed, amplitude, handedness and
personal offsets; each sample adds frame count, time warp, detector jitter and
dropped detections.

Geometry is built in a *body frame*: origin between the shoulders, unit = shoulder
width, x towards image right, y down, z towards the camera (only used for the arm's
inverse kinematics). Hands come from a small kinematic model (palm with MCP joints,
three segments per finger, an opposable thumb), rotated in 3-D and projected
orthographically. Everything is computed for a right-handed signer; left-handed
signers are mirrored at the end (x -> -x with left/right labels swapped), so their
dominant hand is MediaPipe's *left* hand. The output is the raw MediaPipe layout of
:mod:`datasets.layout` (person's right shoulder at image left, as an unmirrored camera
sees it), with proportions measured on real webcam recordings (shoulders 0.36-0.56 of
the image height, 4:3 or 16:9 frames, palm ~0.3 shoulder widths, hands out of frame -
hence undetected - when lowered).

Randomness: every class, signer and sample has its own ``numpy.random.Generator``
seeded from ``(seed, stream, index...)``, so output is byte-identical for a seed and a
class's recipe does not change when more classes or signers are requested.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from datasets import layout
from datasets.atomic import atomic_save_npy, atomic_write
from datasets.errors import UsageError

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1

# Seed streams: (seed, stream, ...) keys the Generator of one class / signer / sample.
_CLASS_STREAM, _SIGNER_STREAM, _SAMPLE_STREAM, _NAME_STREAM, _STYLE_STREAM = 1, 2, 3, 4, 5

_POSE = {name: i for i, name in enumerate(layout.POSE_LANDMARKS)}
_HAND = {name: i for i, name in enumerate(layout.HAND_LANDMARKS)}
_DEG = np.pi / 180.0


def _pose_mirror_permutation() -> np.ndarray:
    """Pose index of each landmark's left/right twin (derived from the layout names)."""
    def twin(name: str) -> str:
        if name.startswith("left_"):
            return "right_" + name[len("left_"):]
        if name.startswith("right_"):
            return "left_" + name[len("right_"):]
        return name
    return np.asarray([_POSE[twin(n)] for n in layout.POSE_LANDMARKS], dtype=np.int64)


_POSE_MIRROR = _pose_mirror_permutation()

# ------------------------------------------------------------------- hand model
# Canonical right hand, palm-length units (wrist -> middle MCP = 1), palm facing the
# camera, fingers up: u = thumb side = +x, v = finger direction = -y, palm normal = -z.
_MCP_U = np.array([0.36, 0.12, -0.12, -0.34])   # index, middle, ring, pinky
_MCP_V = np.array([0.95, 1.00, 0.94, 0.84])
_FINGER_SEGMENTS = np.array([                       # proximal, middle, distal phalanx
    [0.46, 0.27, 0.20], [0.52, 0.31, 0.21], [0.48, 0.30, 0.20], [0.37, 0.22, 0.19]])
_SPLAY_CLOSED = np.array([2.0, 0.0, -2.0, -5.0]) * _DEG    # finger splay at spread 0
_SPLAY_OPEN = np.array([18.0, -3.0, -14.0, -26.0]) * _DEG  # ... at spread 1
_THUMB_CMC = np.array([0.22, 0.20])                 # (u, v)
_THUMB_SEGMENTS = np.array([0.45, 0.34, 0.28])      # metacarpal, proximal, distal
_THUMB_BASE_ANGLE = 20.0 * _DEG                     # metacarpal angle from v at abduction 0
_PALM_POINTS = [_HAND["wrist"], _HAND["index_finger_mcp"], _HAND["pinky_mcp"]]  # their mean = palm centre

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
_SHAPE_JITTER = np.r_[np.ones(12), 0.0, np.ones(4)]  # no jitter on the spread parameter
# Anatomical limits of the handshape parameters (finger joints, spread, thumb).
_SHAPE_LOW = np.r_[np.full(12, -10.0), 0.0, -20.0, -10.0, -10.0, -15.0]
_SHAPE_HIGH = np.r_[np.tile([100.0, 115.0, 80.0], 4), 1.0, 100.0, 90.0, 80.0, 90.0]
_LAX = _shape((15, 22, 10), (18, 25, 12), (20, 28, 12), (22, 30, 14), 0.3, (30, 20, 10, 10))
SIGN_HANDSHAPES = tuple(HANDSHAPES)
_HANDSHAPE_WEIGHTS = np.array([3, 3, 2, 2, 3, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1], dtype=float)
_EXTENDED_JOINT = 30.0  # joints flexed less than this (degrees) count as "extended" for laxness


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
    flex = shape[:, :12].reshape(n, 4, 3) * _DEG                        # (N, 4, 3)
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

    abduction, opposition = (_THUMB_BASE_ANGLE + shape[:, 13] * _DEG), shape[:, 14] * _DEG
    base = np.stack([np.cos(opposition) * np.sin(abduction), -np.cos(opposition) * np.cos(abduction),
                     -np.sin(opposition)], -1)                                # (N, 3)
    bend = np.array([-1.0, 0.0, -0.6]) - (base @ np.array([-1.0, 0.0, -0.6]))[:, None] * base
    bend /= np.linalg.norm(bend, axis=-1, keepdims=True)
    thumb_theta = np.stack([np.zeros(n), shape[:, 15], shape[:, 15] + shape[:, 16]], -1)[..., None] * _DEG
    thumb_dirs = np.cos(thumb_theta) * base[:, None, :] + np.sin(thumb_theta) * bend[:, None, :]
    cmc = np.array([_THUMB_CMC[0], -_THUMB_CMC[1], 0.0])
    thumb = cmc + np.cumsum(_THUMB_SEGMENTS[None, :, None] * thumb_dirs, axis=1)  # (N, 3, 3)

    points = np.concatenate([
        np.zeros((n, 1, 3)), np.broadcast_to(cmc, (n, 1, 3)), thumb, fingers.reshape(n, 16, 3)], axis=1)
    rotation = _rotations(np.broadcast_to(roll, (n,)), np.broadcast_to(pitch, (n,)), np.broadcast_to(yaw, (n,)))
    return np.matmul(points, rotation.transpose(0, 2, 1))


# ----------------------------------------------------------------- signing space
# Palm-centre targets for the dominant (right) hand in the body frame: (x, y, z).
LOCATIONS: dict[str, tuple[float, float, float]] = {
    "forehead": (-0.08, -0.82, 0.35), "temple": (-0.26, -0.74, 0.25), "eye": (-0.12, -0.66, 0.4),
    "nose": (-0.02, -0.58, 0.45), "mouth": (0.0, -0.46, 0.45), "chin": (-0.02, -0.36, 0.45),
    "cheek": (-0.2, -0.5, 0.35), "ear": (-0.3, -0.62, 0.2), "neck": (-0.03, -0.14, 0.35),
    "opposite_shoulder": (0.38, 0.08, 0.3), "chest": (0.0, 0.3, 0.35), "dominant_chest": (-0.3, 0.28, 0.3),
    "stomach": (-0.05, 0.7, 0.4), "neutral": (-0.35, 0.45, 0.8), "neutral_high": (-0.45, 0.1, 0.8),
    "neutral_low": (-0.3, 0.72, 0.7), "side": (-0.85, 0.3, 0.5), "high_side": (-0.7, -0.35, 0.5),
}
_LOCATION_NAMES = tuple(LOCATIONS)
_SPACE_LOW, _SPACE_HIGH = np.array([-1.0, -1.0, 0.0]), np.array([0.7, 0.85, 1.2])  # signing space bounds
STYLE_SIZE = 40  # standard-normal draws per (signer, class), see generate_sample
MOVEMENTS = ("hold", "line", "arc", "circle", "repeat", "tap", "shake", "zigzag", "path3")
_MOVEMENT_WEIGHTS = np.array([0.6, 1.4, 1.2, 1.2, 1.2, 1.0, 0.8, 0.6, 0.8])
TWO_HANDED = ("none", "symmetric", "alternating", "base")
_TWO_HANDED_WEIGHTS = np.array([0.55, 0.18, 0.09, 0.18])
_OSCILLATING = ("circle", "repeat", "tap", "shake", "zigzag")
_BASE_SHAPES = ("B", "5", "S", "1", "C", "bent_B")
HEAD_MOVEMENTS = ("none", "nod", "shake")

# (roll, pitch, yaw) in degrees the dominant hand commonly takes.
_ORIENTATIONS = np.array([
    (15, 0, 0), (15, 0, 180), (10, 0, -90), (35, 20, -60), (80, 60, 0), (90, 10, -90),
    (60, 70, 180), (-20, 10, 30), (0, 45, -45), (100, 30, 150),
], dtype=float)
_REST_ORIENTATION = np.array([180.0, 0.0, -90.0])


@dataclass(frozen=True)
class SignRecipe:
    """What defines one sign (class); every length is in shoulder widths, angles in degrees."""

    gloss: str
    movement: str
    keypoints: tuple                    # ((x, y, z), ...) palm-centre targets, dominant hand
    location_names: tuple               # names the keypoints were derived from
    handshapes: tuple                   # 1 or 2 names from HANDSHAPES
    change_at: float                    # core-time fraction of the handshape change
    orientation: tuple                  # (roll, pitch, yaw) at the start
    orientation_end: tuple              # ... at the end of the core movement
    cycles: float = 1.0                 # repetitions / turns / oscillations
    size: float = 0.0                   # radius, bulge, tap distance or shake amplitude
    direction: float = 1.0              # +1 / -1: sense of rotation or bulge side
    tilt: float = 0.0                   # circle / shake axis angle in the image plane
    two_handed: str = "none"
    base_location: tuple = (0.0, 0.0, 0.0)  # non-dominant hand (own-side coordinates) for "base"
    base_handshape: str = "B"
    base_orientation: tuple = (0.0, 0.0, 0.0)
    head: str = "none"
    parent: int = -1                    # class this one is a one-parameter variant of
    variation: str = ""


@dataclass(frozen=True)
class Variability:
    """How much signers and samples differ: the knobs that set the task's difficulty.

    Ranges ``(low, high)`` are drawn per signer; single numbers are standard deviations.
    Lengths are in shoulder widths, angles in degrees, times in clip fractions.
    """

    style_sigma: tuple = (0.08, 0.16)        # per-(signer, class) keypoint offsets
    orientation_style: tuple = (15.0, 30.0)  # per-(signer, class) hand orientation offsets
    handshape_style: float = 10.0            # per-signer offsets of handshape joint angles
    class_handshape_style: float = 18.0      # per-(signer, class) offsets of handshape joint angles
    shape_jitter: float = 14.0               # per-frame (smooth) wobble of handshape joint angles
    hand_noise: tuple = (0.004, 0.01)        # per-signer detector jitter of hand points
    laxness: tuple = (0.0, 20.0)             # per-signer flexion of "extended" fingers
    amplitude: tuple = (0.75, 1.25)          # per-signer movement size
    body_yaw: float = 10.0                   # per-signer turn of the body towards one side
    speed: tuple = (0.82, 1.0)               # per-signer share of the clip spent signing
    warp: float = 0.4                        # per-signer tempo curve (uniform +-)
    sample_warp: float = 0.35                # per-sample tempo curve
    timing_shift: float = 0.1                # per-sample shift of the sign within the clip
    repetition_change: float = 0.4           # chance a signer repeats a movement once more / less
    dropout_rate: tuple = (0.002, 0.012)     # per-signer chance per frame of losing a hand track


@dataclass(frozen=True)
class SignerProfile:
    """One signer's body, framing and style (all randomised per signer)."""

    signer_id: str
    left_handed: bool
    aspect: float                       # frame width / height
    scale_y: float                      # shoulder width in image-height units
    center: tuple                       # shoulder midpoint in normalised image coords
    lean: float                         # body roll, radians
    head: tuple                         # (nose height, head size, head x offset)
    arm: float                          # arm length factor
    hand_size: float                    # palm length / shoulder width
    finger_proportions: tuple
    hip: tuple                          # (half hip width, hip height)
    seated: bool
    rest: tuple                         # palm-centre rest position (own side)
    amplitude: float
    speed: float                        # share of the clip spent signing (vs rest)
    warp: float                         # personal tempo curve (< 0 slow start, > 0 fast start)
    body_yaw: float                     # body turned towards image right (> 0), radians
    space_offset: tuple                 # personal shift of the signing space
    style_sigma: float                  # per-(signer, class) keypoint offsets
    orientation_style: float            # per-(signer, class) hand orientation offsets, degrees
    laxness: float                      # degrees added to extended joints
    handshape_style: tuple              # personal offsets of the 17 handshape parameters
    orientation_bias: tuple             # degrees (roll, pitch, yaw)
    pose_noise: float                   # detector jitter (shoulder widths)
    hand_noise: float
    dropout_rate: float                 # chance per frame that a hand track is lost
    wrist_offset: tuple                 # hand-model wrist vs pose wrist


@dataclass
class SyntheticSample:
    """One generated sequence in the raw layout (float32 ``(T, 150)``)."""

    raw: np.ndarray
    label: int
    gloss: str
    signer_id: str
    video_id: str
    left_handed: bool = field(default=False, repr=False)


# ------------------------------------------------------------------- recipes
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def _gloss_name(rng: np.random.Generator, taken: set) -> str:
    """A pronounceable made-up word (CV syllables), unique among ``taken``."""
    for attempt in range(1000):
        syllables = 2 + int(rng.random() < 0.45) + (attempt // 200)
        word = "".join(_CONSONANTS[rng.integers(len(_CONSONANTS))] + _VOWELS[rng.integers(len(_VOWELS))]
                       for _ in range(syllables))
        if word not in taken:
            return word
    raise RuntimeError("could not find an unused gloss name")


def _choice(rng, options, weights=None):
    p = None if weights is None else np.asarray(weights, float) / np.sum(weights)
    return options[int(rng.choice(len(options), p=p))]


def _pick_location(rng, exclude=()) -> str:
    names = [n for n in _LOCATION_NAMES if n not in exclude]
    return names[int(rng.integers(len(names)))]


def _displaced(rng, start: np.ndarray) -> np.ndarray:
    """A second keypoint 0.25-0.6 shoulder widths from ``start`` in one of 8 directions."""
    angle = rng.integers(8) * np.pi / 4 + rng.normal(0, 0.15)
    length = rng.uniform(0.25, 0.6)
    return start + np.array([np.cos(angle) * length, np.sin(angle) * length, rng.uniform(-0.15, 0.15)])


def _keypoints_for(rng, movement: str, start_name: str, base=None):
    """Keypoints and their names for a movement starting at a named location (or on a base hand)."""
    start = np.array(LOCATIONS[start_name]) if base is None else base
    names = [start_name]
    if movement in ("line", "arc", "repeat", "zigzag"):
        if rng.random() < 0.5 and base is None:
            end_name = _pick_location(rng, exclude=(start_name,))
            second = np.array(LOCATIONS[end_name])
            if np.linalg.norm(second[:2] - start[:2]) < 0.2:
                second = _displaced(rng, start)
                end_name = "displaced"
        else:
            second, end_name = _displaced(rng, start), "displaced"
        return (start, second), (*names, end_name)
    if movement == "path3":
        second_name = _pick_location(rng, exclude=(start_name,)) if base is None else "displaced"
        second = np.array(LOCATIONS[second_name]) if base is None else _displaced(rng, start)
        third = _displaced(rng, second)
        return (start, second, third), (*names, second_name, "displaced")
    return (start,), tuple(names)


def _movement_params(rng, movement: str) -> dict:
    if movement == "circle":
        return dict(cycles=float(rng.choice([1, 1, 2])), size=rng.uniform(0.12, 0.28),
                    direction=float(rng.choice([-1, 1])), tilt=rng.uniform(0, np.pi))
    if movement == "repeat":
        return dict(cycles=float(rng.choice([2, 2, 3])))
    if movement == "tap":
        return dict(cycles=float(rng.choice([1, 2, 2, 3])), size=rng.uniform(0.1, 0.2), tilt=rng.uniform(0, 2 * np.pi))
    if movement == "shake":
        return dict(cycles=float(rng.choice([2, 3, 4])), size=rng.uniform(0.05, 0.12), tilt=rng.uniform(0, np.pi))
    if movement == "zigzag":
        return dict(cycles=float(rng.choice([2, 3])), size=rng.uniform(0.08, 0.16))
    if movement == "arc":
        return dict(size=rng.uniform(0.12, 0.3), direction=float(rng.choice([-1, 1])))
    return {}


def _orientations(rng, change: bool):
    start = _ORIENTATIONS[rng.integers(len(_ORIENTATIONS))] + rng.normal(0, 8, 3)
    end = start.copy()
    if change:
        axis = rng.choice(3, p=[0.35, 0.2, 0.45])
        magnitude = {0: rng.uniform(45, 100), 1: rng.uniform(40, 75), 2: rng.uniform(90, 170)}[int(axis)]
        end[axis] += magnitude * rng.choice([-1, 1])
    return tuple(np.round(start, 3)), tuple(np.round(end, 3))


def _fresh_recipe(rng, gloss: str) -> dict:
    two_handed = _choice(rng, TWO_HANDED, _TWO_HANDED_WEIGHTS)
    movement = _choice(rng, MOVEMENTS, _MOVEMENT_WEIGHTS)
    if two_handed == "alternating" and movement not in _OSCILLATING:
        movement = _choice(rng, ("circle", "repeat", "tap"))
    base = base_loc = None
    recipe = dict(gloss=gloss, two_handed=two_handed, head="none")
    if two_handed == "base":
        base_own = np.array([rng.uniform(-0.2, 0.05), rng.uniform(0.35, 0.65), 0.75])
        base_loc = base_own * np.array([-1, 1, 1])  # where the base hand is, in the dominant frame
        base = base_loc + np.array([rng.normal(-0.05, 0.05), -rng.uniform(0.1, 0.22), 0.0])
        recipe.update(base_location=tuple(np.round(base_own, 4)),
                      base_handshape=_BASE_SHAPES[rng.integers(len(_BASE_SHAPES))],
                      base_orientation=(float(rng.uniform(60, 100)), float(rng.uniform(50, 85)),
                                        float(rng.choice([0.0, 180.0]))))
        start_name = "base_hand"
    elif two_handed in ("symmetric", "alternating"):
        start_name = _choice(rng, ("neutral", "neutral_high", "neutral_low", "chest", "dominant_chest",
                                   "side", "high_side", "temple", "cheek", "stomach"))
    else:
        start_name = _pick_location(rng)
    keypoints, names = _keypoints_for(rng, movement, start_name, base)
    n_shapes = 2 if (rng.random() < 0.35 or movement == "hold") else 1
    shapes = [_choice(rng, SIGN_HANDSHAPES, _HANDSHAPE_WEIGHTS)]
    if n_shapes == 2:
        shapes.append(_choice(rng, [s for s in SIGN_HANDSHAPES if s != shapes[0]]))
    change_orientation = rng.random() < (0.6 if movement == "hold" else 0.3)
    orientation, orientation_end = _orientations(rng, change_orientation)
    recipe.update(movement=movement, keypoints=tuple(tuple(np.round(k, 4)) for k in keypoints),
                  location_names=names, handshapes=tuple(shapes), change_at=float(rng.uniform(0.35, 0.65)),
                  orientation=orientation, orientation_end=orientation_end, **_movement_params(rng, movement))
    if rng.random() < 0.12:
        recipe["head"] = _choice(rng, HEAD_MOVEMENTS[1:])
    return recipe


_VARIATIONS = ("handshape", "location", "reverse", "movement", "orientation", "two_handed")
_VARIATION_WEIGHTS = np.array([3, 2, 1.5, 2, 1, 1])


def _variant_recipe(rng, parent: dict, parent_index: int, gloss: str) -> dict:
    """Copy ``parent`` and change exactly one aspect: a minimal pair for the two classes."""
    recipe = dict(parent, gloss=gloss, parent=parent_index)
    kind = _choice(rng, _VARIATIONS, _VARIATION_WEIGHTS)
    if kind == "reverse" and (len(recipe["keypoints"]) < 2 and recipe["movement"] not in ("circle",)
                              and len(recipe["handshapes"]) < 2):
        kind = "handshape"
    if kind == "two_handed" and recipe["two_handed"] == "base":
        kind = "location"
    if kind == "location" and recipe["two_handed"] == "base":
        kind = "handshape"
    recipe["variation"] = kind
    if kind == "handshape":
        i = int(rng.integers(len(recipe["handshapes"])))
        shapes = list(recipe["handshapes"])
        shapes[i] = _choice(rng, [s for s in SIGN_HANDSHAPES if s not in shapes])
        recipe["handshapes"] = tuple(shapes)
    elif kind == "location":
        target = LOCATIONS[_pick_location(rng, exclude=recipe["location_names"][:1])]
        shift = np.array(target) - np.array(recipe["keypoints"][0])
        if np.linalg.norm(shift[:2]) < 0.25:
            shift[:2] *= 0.25 / max(np.linalg.norm(shift[:2]), 1e-6)
        recipe["keypoints"] = tuple(tuple(np.round(np.array(k) + shift, 4)) for k in recipe["keypoints"])
        recipe["location_names"] = ("shifted",) + tuple(recipe["location_names"][1:])
    elif kind == "reverse":
        if len(recipe["keypoints"]) >= 2:
            recipe["keypoints"] = tuple(reversed(recipe["keypoints"]))
            recipe["location_names"] = tuple(reversed(recipe["location_names"]))
        elif recipe["movement"] == "circle":
            recipe["direction"] = -recipe["direction"]
        if len(recipe["handshapes"]) == 2:
            recipe["handshapes"] = tuple(reversed(recipe["handshapes"]))
        recipe["orientation"], recipe["orientation_end"] = recipe["orientation_end"], recipe["orientation"]
    elif kind == "movement":
        options = [m for m in MOVEMENTS if m != recipe["movement"] and m != "path3"]
        if recipe["two_handed"] == "alternating":
            options = [m for m in options if m in _OSCILLATING]
        movement = _choice(rng, options)
        start = np.array(recipe["keypoints"][0])
        if movement in ("line", "arc", "repeat", "zigzag"):
            second = np.array(recipe["keypoints"][1]) if len(recipe["keypoints"]) > 1 else _displaced(rng, start)
            keypoints = (start, second)
        else:
            keypoints = (start,)
        for key in ("cycles", "size", "direction", "tilt"):
            recipe.pop(key, None)
        recipe.update(movement=movement, keypoints=tuple(tuple(np.round(k, 4)) for k in keypoints),
                      location_names=tuple(recipe["location_names"][:len(keypoints)]),
                      **_movement_params(rng, movement))
        if movement == "hold" and len(recipe["handshapes"]) == 1 and recipe["orientation"] == recipe["orientation_end"]:
            recipe["handshapes"] = (recipe["handshapes"][0], _choice(rng, [s for s in SIGN_HANDSHAPES
                                                                           if s != recipe["handshapes"][0]]))
    elif kind == "orientation":
        recipe["orientation"], recipe["orientation_end"] = _orientations(rng, rng.random() < 0.5)
    else:  # two_handed: one-handed <-> symmetric
        recipe["two_handed"] = "symmetric" if recipe["two_handed"] == "none" else "none"
    return recipe


def make_recipes(num_classes: int, seed: int = 0, variant_fraction: float = 0.4) -> list[SignRecipe]:
    """Class recipes ``0..num_classes-1``; recipe ``k`` depends only on ``seed`` and classes < k."""
    recipes: list[dict] = []
    names: set = set()
    for k in range(num_classes):
        rng = np.random.default_rng([seed, _CLASS_STREAM, k])
        gloss = _gloss_name(np.random.default_rng([seed, _NAME_STREAM, k]), names)
        names.add(gloss)
        if k > 0 and rng.random() < variant_fraction:
            parent = int(rng.integers(k))
            recipes.append(_variant_recipe(rng, recipes[parent], parent, gloss))
        else:
            recipes.append(_fresh_recipe(rng, gloss))
    out = []
    for r in recipes:
        clean = {k: (float(v) if isinstance(v, (np.floating, np.integer)) else v) for k, v in r.items()}
        keypoints = np.clip(np.array(clean["keypoints"], dtype=np.float64), _SPACE_LOW, _SPACE_HIGH)
        clean["keypoints"] = tuple(tuple(float(c) for c in k) for k in keypoints)
        clean["orientation"] = tuple(float(c) for c in clean["orientation"])
        clean["orientation_end"] = tuple(float(c) for c in clean["orientation_end"])
        clean["base_location"] = tuple(float(c) for c in clean.get("base_location", (0.0, 0.0, 0.0)))
        clean["base_orientation"] = tuple(float(c) for c in clean.get("base_orientation", (0.0, 0.0, 0.0)))
        out.append(SignRecipe(**clean))
    return out


def make_signers(num_signers: int, seed: int = 0, left_handed_fraction: float = 0.2,
                 variability: Variability | None = None) -> list[SignerProfile]:
    """Signer profiles ``0..num_signers-1``; profile ``s`` depends only on ``seed`` and ``s``."""
    v = variability or Variability()
    signers = []
    for s in range(num_signers):
        rng = np.random.default_rng([seed, _SIGNER_STREAM, s])
        aspect = 4 / 3 if rng.random() < 0.75 else 16 / 9
        scale_y = rng.uniform(0.36, 0.56)
        head_height = rng.uniform(0.52, 0.7)
        top = 0.03 + (head_height + 0.35) * scale_y     # highest shoulder line with the head in frame
        bottom = 1.0 - 0.85 * scale_y                   # lowest one with the signing space in frame
        cy = rng.uniform(top, max(top, bottom))
        rest_front = rng.random() < 0.35
        signers.append(SignerProfile(
            signer_id=f"signer{s:02d}",
            left_handed=bool(rng.random() < left_handed_fraction),
            aspect=float(aspect), scale_y=float(scale_y),
            center=(float(0.5 + rng.normal(0, 0.04)), float(cy)),
            lean=float(rng.normal(0, 3) * _DEG),
            head=(float(head_height), float(rng.normal(1.0, 0.06)), float(rng.normal(0, 0.03))),
            arm=float(rng.normal(1.0, 0.05)),
            hand_size=float(rng.normal(0.31, 0.02)),
            finger_proportions=tuple(float(v) for v in rng.normal(1.0, 0.04, 4)),
            hip=(float(rng.normal(0.34, 0.03)), float(rng.normal(1.42, 0.08))),
            seated=bool(rng.random() < 0.5),
            rest=((-0.15, 1.35, 0.35) if rest_front else (-0.6, 1.62, 0.1)),
            amplitude=float(rng.uniform(*v.amplitude)),
            speed=float(rng.uniform(*v.speed)),
            warp=float(rng.uniform(-v.warp, v.warp)),
            body_yaw=float(rng.normal(0, v.body_yaw) * _DEG),
            space_offset=tuple(float(x) for x in (*rng.normal(0, 0.05, 2), 0.0)),
            style_sigma=float(rng.uniform(*v.style_sigma)),
            orientation_style=float(rng.uniform(*v.orientation_style)),
            laxness=float(rng.uniform(*v.laxness)),
            handshape_style=tuple(float(x) for x in rng.normal(0, v.handshape_style, 17) * _SHAPE_JITTER),
            orientation_bias=tuple(float(x) for x in rng.normal(0, [8, 6, 10])),
            pose_noise=float(rng.uniform(0.0015, 0.006)),
            hand_noise=float(rng.uniform(*v.hand_noise)),
            dropout_rate=float(rng.uniform(*v.dropout_rate)),
            wrist_offset=tuple(float(x) for x in rng.normal(0, 0.025, 2)),
        ))
    return signers


# ------------------------------------------------------------------ time curves
# Standard deviations of the slow wobble channels of one sample: dominant / non-dominant
# hand position (shoulder widths), their orientations (degrees), head yaw/pitch/roll
# (radians), face, lower body, body sway (radians), camera drift (image units).
_WOBBLE_SCALES = np.array([0.012] * 3 + [0.01] * 3 + [4.0] * 6 + [0.04] * 3 + [0.015] * 2 + [0.01] * 2
                          + [0.012] + [0.008] * 2)


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _minimum_jerk(s):
    s = np.clip(s, 0.0, 1.0)
    return s * s * s * (10 - 15 * s + 6 * s * s)


def _smooth_noise(rng, t: np.ndarray, scales: np.ndarray, max_freq: float = 2.5) -> np.ndarray:
    """Slow random wobble ``(T, C)``: per channel a sum of 3 random low-frequency sinusoids
    with standard deviation ``scales[c]`` (one call for every channel a sample needs)."""
    scales = np.asarray(scales, dtype=np.float64)
    freqs = rng.uniform(0.3, max_freq, (3, len(scales)))
    phases = rng.uniform(0, 2 * np.pi, (3, len(scales)))
    amps = rng.normal(0, 1, (3, len(scales))) * (scales * np.sqrt(2 / 3))
    return (np.sin(2 * np.pi * t[:, None, None] * freqs + phases) * amps).sum(axis=1)


def _warp(u: np.ndarray, a1: float, a2: float) -> np.ndarray:
    """Monotone time warp of [0, 1] onto itself (|a1| + |a2| < 1 keeps it increasing)."""
    return np.clip(u + a1 * np.sin(np.pi * u) / np.pi + a2 * np.sin(2 * np.pi * u) / (2 * np.pi), 0.0, 1.0)


# ------------------------------------------------------------------ trajectories
def _perpendicular(v: np.ndarray) -> np.ndarray:
    p = np.array([-v[1], v[0], 0.0])
    return p / max(np.linalg.norm(p), 1e-9)


def _core_path(recipe: SignRecipe, keypoints: np.ndarray, u: np.ndarray, amplitude: float,
               phase: float = 0.0, cycles: float | None = None) -> np.ndarray:
    """Palm-centre path ``(T, 3)`` of the dominant hand at core times ``u`` in [0, 1]."""
    m, k0 = recipe.movement, keypoints[0]
    c, size = (recipe.cycles if cycles is None else cycles), recipe.size * amplitude
    if m == "hold":
        return k0 + 0.02 * np.sin(np.pi * u)[:, None] * np.array([0.3, 1.0, 0.0])
    if m in ("line", "arc", "zigzag"):
        s = _minimum_jerk(u) if m != "zigzag" else u
        delta = keypoints[1] - k0
        path = k0 + s[:, None] * delta
        if m == "arc":
            path += (recipe.direction * size * np.sin(np.pi * s))[:, None] * _perpendicular(delta)
        elif m == "zigzag":
            path += (size * np.sin(2 * np.pi * c * s + phase))[:, None] * _perpendicular(delta)
        return path
    if m == "path3":
        half = np.clip(u * 2, 0, 2)
        first, second = _minimum_jerk(half), _minimum_jerk(half - 1)
        return k0 + first[:, None] * (keypoints[1] - k0) + second[:, None] * (keypoints[2] - keypoints[1])
    if m == "repeat":
        s = 0.5 - 0.5 * np.cos(2 * np.pi * c * u + phase)
        return k0 + s[:, None] * (keypoints[1] - k0)
    axis = np.array([np.cos(recipe.tilt), np.sin(recipe.tilt), 0.0])
    if m == "circle":
        start = recipe.tilt + phase
        angle = recipe.direction * 2 * np.pi * c * u + start
        ellipse = np.stack([np.cos(angle) - np.cos(start), 0.8 * (np.sin(angle) - np.sin(start)),
                            0.3 * (np.sin(angle) - np.sin(start))], -1)
        return k0 + size * ellipse  # starts (u = 0) on the keypoint
    if m == "tap":
        s = 0.5 + 0.5 * np.cos(2 * np.pi * c * u + phase)
        return k0 + (size * s)[:, None] * np.array([0.4 * axis[0], -0.5 - 0.3 * abs(axis[1]), 0.5])
    # shake
    return k0 + (size * np.sin(2 * np.pi * c * u + phase))[:, None] * axis


def _arm_elbows(shoulders: np.ndarray, wrists: np.ndarray, upper: float, fore: float) -> np.ndarray:
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


# ------------------------------------------------------------------ one sample
_FACE = ("nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
         "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right")
# (x, y relative to the nose, depth towards camera) in head units.
_FACE_TEMPLATE = np.array([
    (0.0, 0.0, 1.0), (0.05, -0.07, 0.7), (0.1, -0.075, 0.65), (0.14, -0.07, 0.55),
    (-0.05, -0.07, 0.7), (-0.1, -0.075, 0.65), (-0.14, -0.07, 0.55),
    (0.19, -0.035, 0.0), (-0.19, -0.035, 0.0), (0.065, 0.11, 0.75), (-0.065, 0.11, 0.75)])
_FACE_INDEX = np.array([_POSE[n] for n in _FACE])
_LOWER = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
          "left_heel", "right_heel", "left_foot_index", "right_foot_index")
_LOWER_INDEX = np.array([_POSE[n] for n in _LOWER])


def _lower_body(signer: SignerProfile) -> np.ndarray:
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


def _hand_track_lost(rng, num_frames: int, rate: np.ndarray, mean_run: float = 3.0) -> np.ndarray:
    """Frames ``(T,)`` where a hand track is lost: runs start with per-frame ``rate``."""
    starts = rng.random(num_frames) < rate
    lengths = rng.geometric(1.0 / mean_run, num_frames)
    ends = np.where(starts, np.arange(num_frames) + lengths, -1)
    return np.maximum.accumulate(ends) > np.arange(num_frames)


def generate_sample(recipe: SignRecipe, signer: SignerProfile, rng: np.random.Generator,
                    num_frames: int, style: np.ndarray | None = None,
                    variability: Variability | None = None) -> np.ndarray:
    """One sequence of ``recipe`` by ``signer``: raw landmarks ``(num_frames, 150)`` float32.

    ``style`` holds :data:`STYLE_SIZE` standard-normal draws fixed per (signer, class):
    the signer's personal way of placing and orienting this sign's hands.
    """
    T = int(num_frames)
    t = (np.arange(T) + 0.5) / T
    v = variability or Variability()
    style = np.zeros(STYLE_SIZE) if style is None else np.asarray(style, dtype=np.float64)

    # --- timeline: rest, rise, core (sign), lower, rest; the share signing follows the signer's speed.
    signing = np.clip(signer.speed + rng.normal(0, 0.07), 0.45, 0.98)
    idle = 1.0 - signing
    rest_start = idle * rng.uniform(0.1, 0.6)
    rise = min(rng.uniform(0.06, 0.11), signing * 0.25)
    fall = min(rng.uniform(0.06, 0.11), signing * 0.25)
    core_start, core_end = rest_start + rise, rest_start + signing - fall
    # Clips often start or end mid-movement: shift the whole timeline a little.
    shift = rng.normal(0, v.timing_shift)
    tt = t + shift
    u = _warp(np.clip((tt - core_start) / (core_end - core_start), 0, 1),
              np.clip(signer.warp + rng.normal(0, v.sample_warp), -0.6, 0.6), rng.uniform(-0.3, 0.3))
    w_in = _minimum_jerk((tt - rest_start) / rise)
    w_out = _minimum_jerk((tt - core_end) / fall)
    active = (w_in * (1 - w_out))[:, None]                                      # (T, 1)

    # --- dominant hand keypoints: class recipe + signer style + sample jitter, scaled by amplitude.
    keypoints = np.array(recipe.keypoints)
    keypoint_style = style[:9].reshape(3, 3)[:len(keypoints)]
    # Some signers repeat a movement once more or once less than others.
    cycles = recipe.cycles
    if recipe.movement in ("repeat", "tap", "shake", "zigzag") and _normal_cdf(style[13]) < v.repetition_change:
        cycles = max(1.0, cycles + (1.0 if style[14] > 0 else -1.0))
    amplitude = signer.amplitude * rng.normal(1.0, 0.08)
    keypoints = keypoints[:1] + amplitude * (keypoints - keypoints[:1])
    keypoints = keypoints + np.array(signer.space_offset)
    keypoints = keypoints + signer.style_sigma * keypoint_style * np.array([1, 1, 0.5])
    keypoints = keypoints + rng.normal(0, 0.025, keypoints.shape)
    core = _core_path(recipe, keypoints, u, amplitude, cycles=cycles)         # (T, 3)

    rest = np.array(signer.rest) + rng.normal(0, 0.03, 3)
    wobble = _smooth_noise(rng, t, _WOBBLE_SCALES)                              # (T, 22)
    dominant = rest + active * (core - rest) + wobble[:, 0:3]

    # --- non-dominant hand, in its own mirrored frame (mirrored to the left side below).
    rest_nd = np.array(signer.rest) + rng.normal(0, 0.03, 3)
    if recipe.two_handed in ("symmetric", "alternating"):
        phase = np.pi if recipe.two_handed == "alternating" else 0.0
        nd_keys = keypoints + rng.normal(0, 0.03, keypoints.shape)
        nd_target, nd_active = _core_path(recipe, nd_keys, u, amplitude, phase, cycles), active
    elif recipe.two_handed == "base":
        base = np.array(recipe.base_location) + np.array(signer.space_offset) * np.array([-1, 1, 1])
        nd_target = base + rng.normal(0, 0.02, 3)
        nd_in = _minimum_jerk((tt - rest_start + 0.03) / rise)
        nd_active = (nd_in * (1 - _minimum_jerk((tt - core_end - 0.03) / fall)))[:, None]
    else:
        nd_target, nd_active = rest_nd, np.zeros((T, 1))
    non_dominant = rest_nd + nd_active * (nd_target - rest_nd) + wobble[:, 3:6]

    # --- handshapes over time (blend lax -> first shape -> second shape -> lax).
    shapes = [HANDSHAPES[h].copy() for h in recipe.handshapes]
    for s in shapes:
        fingers = s[:12]
        fingers += np.where(fingers < _EXTENDED_JOINT, signer.laxness, -0.5 * signer.laxness)
        s += np.array(signer.handshape_style) + v.class_handshape_style * style[16:33] * _SHAPE_JITTER
        fingers += rng.normal(0, 4, 12)
        s[13:] += rng.normal(0, 4, 4)
    change = _minimum_jerk((u - recipe.change_at - 0.06 * style[12]) / 0.18 + 0.5) if len(shapes) == 2 else np.zeros(T)
    sign_shape = shapes[0] + change[:, None] * (shapes[-1] - shapes[0])
    shape_dom = _LAX + active * (sign_shape - _LAX) + _smooth_noise(rng, t, _SHAPE_JITTER * v.shape_jitter, 4.0)
    if recipe.two_handed in ("symmetric", "alternating"):
        shape_nd = _LAX + nd_active * (sign_shape - _LAX)
    elif recipe.two_handed == "base":
        base_shape = HANDSHAPES[recipe.base_handshape] + rng.normal(0, 4, 17) * _SHAPE_JITTER
        shape_nd = _LAX + nd_active * (base_shape - _LAX)
    else:
        shape_nd = np.broadcast_to(_LAX, (T, 17))
    # Keep every joint inside its anatomical range however the offsets add up.
    shape_dom, shape_nd = np.clip(shape_dom, _SHAPE_LOW, _SHAPE_HIGH), np.clip(shape_nd, _SHAPE_LOW, _SHAPE_HIGH)

    # --- orientations (degrees) over time.
    bias = np.array(signer.orientation_bias)
    start, end = np.array(recipe.orientation) + bias, np.array(recipe.orientation_end) + bias
    twist = _minimum_jerk(u)[:, None]
    ori_sign = start + twist * (end - start) + signer.orientation_style * style[9:12] + rng.normal(0, 6, 3)
    if recipe.movement == "shake":  # shakes also wobble the wrist
        ori_sign = ori_sign + (12 * np.sin(2 * np.pi * cycles * u))[:, None] * np.array([1.0, 0, 0.5])
    turn = np.array([0.0, 0.0, signer.body_yaw / _DEG])  # a turned body turns the palms too
    ori_dom = _REST_ORIENTATION + active * (ori_sign + turn - _REST_ORIENTATION) + wobble[:, 6:9]
    if recipe.two_handed in ("symmetric", "alternating"):
        ori_nd_sign = ori_sign + rng.normal(0, 6, 3)
    elif recipe.two_handed == "base":
        ori_nd_sign = np.array(recipe.base_orientation) + rng.normal(0, 6, 3)
    else:
        ori_nd_sign = _REST_ORIENTATION
    ori_nd = _REST_ORIENTATION + nd_active * (ori_nd_sign - turn - _REST_ORIENTATION) + wobble[:, 9:12]

    # --- both hands at once: (2T, 21, 3) in shoulder widths, wrist at the origin.
    ori = np.concatenate([ori_dom, ori_nd]) * _DEG
    hands = hand_points(np.concatenate([shape_dom, shape_nd]), ori[:, 0], ori[:, 1], ori[:, 2],
                        signer.finger_proportions)
    centers = np.concatenate([dominant, non_dominant])                      # (2T, 3) palm-centre targets
    perspective = 1.0 + 0.12 * (centers[:, 2] - 0.5)
    hands *= (signer.hand_size * perspective)[:, None, None]
    palm = hands[:, _PALM_POINTS].mean(axis=1)
    wrists = centers - palm                                                  # (2T, 3)
    hands = hands + wrists[:, None, :]

    # --- arms: shoulders lift a little when the hand is high; elbows by IK (own side = right).
    lift = 0.06 * np.clip((0.4 - wrists[:, 1]) / 1.2, 0, 1)
    shoulders = np.stack([np.full(2 * T, -0.5), -lift, np.zeros(2 * T)], -1)
    elbows = _arm_elbows(shoulders, wrists, 0.8 * signer.arm, 0.75 * signer.arm)

    # Non-dominant hand: mirror its own-side coordinates onto the left side.
    mirror = np.array([-1.0, 1.0, 1.0])
    hands = hands.reshape(2, T, layout.NUM_HAND, 3)
    hands[1] *= mirror
    wrists, elbows, shoulders = (a.reshape(2, T, 3) for a in (wrists, elbows, shoulders))
    wrists[1] *= mirror
    elbows[1] *= mirror
    shoulders[1] *= mirror

    # --- pose (T, 33, 2): face, arms (from the hand model), lower body.
    pose = np.zeros((T, layout.NUM_POSE, 2))
    nose_y, head_size, head_x = signer.head
    head_motion = wobble[:, 12:15].copy()                 # yaw, pitch, roll (radians)
    head_motion[:, 0] += 0.8 * signer.body_yaw
    if recipe.head != "none":
        nod = 0.25 * np.sin(2 * np.pi * 2.5 * u) * active[:, 0]
        head_motion[:, 1 if recipe.head == "nod" else 0] += nod
    face = _FACE_TEMPLATE[None, :, :2] * head_size
    depth = _FACE_TEMPLATE[None, :, 2] * head_size * 0.22
    face = face + np.stack([head_motion[:, :1] * depth, head_motion[:, 1:2] * depth], -1)
    roll = head_motion[:, 2:3]
    fx, fy = face[..., 0], face[..., 1]
    face = np.stack([np.cos(roll) * fx - np.sin(roll) * fy, np.sin(roll) * fx + np.cos(roll) * fy], -1)
    pose[:, _FACE_INDEX] = face + np.array([head_x, -nose_y]) + wobble[:, None, 15:17]
    # index 0 = dominant (right side), 1 = non-dominant (left side)
    for side, prefix in ((0, "right"), (1, "left")):
        h = hands[side]
        pose[:, _POSE[f"{prefix}_shoulder"]] = shoulders[side][:, :2]
        pose[:, _POSE[f"{prefix}_elbow"]] = elbows[side][:, :2]
        wrist_offset = np.array(signer.wrist_offset) * (mirror[:2] if side else 1.0)
        pose[:, _POSE[f"{prefix}_wrist"]] = wrists[side][:, :2] + wrist_offset
        pose[:, _POSE[f"{prefix}_pinky"]] = h[:, _HAND["pinky_mcp"], :2]
        knuckle = 0.6 * h[:, _HAND["index_finger_mcp"]] + 0.4 * h[:, _HAND["index_finger_pip"]]
        pose[:, _POSE[f"{prefix}_index"]] = knuckle[:, :2]
        pose[:, _POSE[f"{prefix}_thumb"]] = h[:, _HAND["thumb_ip"], :2]
    pose[:, _LOWER_INDEX] = _lower_body(signer) + wobble[:, None, 17:19]
    hand_xy = hands[..., :2]                                                  # (2, T, 21, 2)

    # --- left-handed signers: mirror the whole body and swap left/right labels.
    # hand_xy[0] is the person's right hand, hand_xy[1] the left, after this block too.
    if signer.left_handed:
        pose = pose[:, _POSE_MIRROR] * np.array([-1.0, 1.0])
        hand_xy = hand_xy[::-1] * np.array([-1.0, 1.0])

    # --- body frame -> normalised image coordinates (lean + slow sway, scale, aspect, offset).
    sway = signer.lean + wobble[:, 19]
    drift = wobble[:, 20:22] + rng.normal(0, 0.01, 2)
    cos_l, sin_l = np.cos(sway)[:, None], np.sin(sway)[:, None]                # (T, 1)
    scale = signer.scale_y * rng.normal(1.0, 0.02)
    turned = np.cos(signer.body_yaw)  # a turned body looks narrower
    cx, cy = signer.center

    def to_image(points):  # (..., T, P, 2) body frame -> (..., T, P, 2) image
        x, y = points[..., 0] * turned, points[..., 1]
        xr, yr = cos_l * x - sin_l * y, sin_l * x + cos_l * y
        return np.stack([cx + drift[:, None, 0] + xr * scale / signer.aspect,
                         cy + drift[:, None, 1] + yr * scale], -1)

    pose_img = to_image(pose)
    hands_img = to_image(hand_xy)

    # --- detector: jitter, hands lost out of frame / when fast / at random, rare pose loss.
    unit = signer.scale_y  # one shoulder width in image-height units
    pose_img += rng.normal(0, signer.pose_noise * unit, pose_img.shape) * np.array([1 / signer.aspect, 1])
    hands_img += (rng.normal(0, signer.hand_noise * unit, hands_img.shape)
                  + rng.normal(0, signer.hand_noise * unit, (2, T, 1, 2))) * np.array([1 / signer.aspect, 1])
    centre = hands_img.mean(axis=2)                                           # (2, T, 2)
    in_frame = np.all((centre > 0.01) & (centre < 0.97), axis=-1)
    # Tracks are lost more often when the hand moves fast (blur) or is low, near the frame edge.
    speed = np.linalg.norm(np.diff(centre, axis=1, prepend=centre[:, :1]), axis=-1) / unit * T / 60
    low = np.clip((centre[..., 1] - 0.8) / 0.17, 0, 1)
    rate = signer.dropout_rate * (1 + 2 * np.clip(speed - 0.05, 0, 1) + 4 * low)
    lost = np.stack([_hand_track_lost(rng, T, rate[0]), _hand_track_lost(rng, T, rate[1])])
    detected = in_frame & ~lost
    hands_img = np.where(detected[..., None, None], hands_img, 0.0)
    pose_lost = np.zeros(T, bool)
    if rng.random() < 0.25:
        pose_lost = _hand_track_lost(rng, T, np.full(T, rng.uniform(0.005, 0.02)), mean_run=2.0)
    raw = np.concatenate([pose_img, hands_img[1], hands_img[0]], axis=1)   # pose, left, right
    raw[pose_lost] = 0.0
    return raw.reshape(T, layout.RAW_FEATURES).astype(np.float32)


# ------------------------------------------------------------------ public API
def _check_args(num_classes, num_signers, samples_per_class_per_signer, min_frames, max_frames):
    if num_classes < 1 or num_signers < 1 or samples_per_class_per_signer < 1:
        raise UsageError("num_classes, num_signers and samples_per_class_per_signer must all be >= 1 "
                         f"(got {num_classes}, {num_signers}, {samples_per_class_per_signer})")
    if not 2 <= min_frames <= max_frames:
        raise UsageError(f"need 2 <= min_frames <= max_frames, got {min_frames}..{max_frames}")


def generate_signs(num_classes: int = 100, num_signers: int = 12, samples_per_class_per_signer: int = 2,
                   seed: int = 0, min_frames: int = 30, max_frames: int = 120,
                   variability: Variability | None = None) -> list[SyntheticSample]:
    """Every class signed by every signer ``samples_per_class_per_signer`` times (class-major order)."""
    _check_args(num_classes, num_signers, samples_per_class_per_signer, min_frames, max_frames)
    recipes = make_recipes(num_classes, seed)
    signers = make_signers(num_signers, seed, variability=variability)
    samples = []
    for label, recipe in enumerate(recipes):
        styles = [np.random.default_rng([seed, _STYLE_STREAM, label, s]).standard_normal(STYLE_SIZE)
                  for s in range(num_signers)]
        for s, signer in enumerate(signers):
            for rep in range(samples_per_class_per_signer):
                rng = np.random.default_rng([seed, _SAMPLE_STREAM, label, s, rep])
                frames = int(rng.integers(min_frames, max_frames + 1))
                raw = generate_sample(recipe, signer, rng, frames, styles[s], variability)
                samples.append(SyntheticSample(raw, label, recipe.gloss, signer.signer_id,
                                               f"{recipe.gloss}_{signer.signer_id}_{rep:02d}", signer.left_handed))
    return samples


def _recipe_summary(recipe: SignRecipe) -> dict:
    d = asdict(recipe)
    d["keypoints"] = [[round(c, 4) for c in k] for k in recipe.keypoints]
    return d


def write_synthetic_dataset(out_dir: str | os.PathLike, num_classes: int = 100, num_signers: int = 12,
                            samples_per_class_per_signer: int = 2, val_signers: int = 3, seed: int = 0,
                            min_frames: int = 30, max_frames: int = 120, name: str = "synthetic",
                            variability: Variability | None = None) -> dict:
    """Generate and write a dataset folder; the last ``val_signers`` signers form the val split.

    Writes ``landmarks/<video_id>.npy`` (raw float32 ``(T, 150)``), ``index.csv``
    (video_id,gloss,signer_id,split), WLASL-style ``index.json``, SPOTER CSVs
    ``<name>_train.csv`` / ``<name>_val.csv`` and ``dataset.json`` (parameters, class
    recipes, signer profiles). Every file is written atomically. Returns a summary.
    """
    from datasets.sequences import SequenceSet
    from datasets.spoter_csv import write_spoter_csv

    _check_args(num_classes, num_signers, samples_per_class_per_signer, min_frames, max_frames)
    if not 0 <= val_signers < num_signers:
        raise UsageError(f"val_signers must be in 0..{num_signers - 1} (at least one training signer), "
                         f"got {val_signers}")
    if not name or any(c in name for c in "/\\\0"):
        raise UsageError(f"dataset name {name!r} must be a plain file-name prefix")
    out_dir = Path(out_dir)
    landmarks_dir = out_dir / "landmarks"
    landmarks_dir.mkdir(parents=True, exist_ok=True)

    variability = variability or Variability()
    samples = generate_signs(num_classes, num_signers, samples_per_class_per_signer, seed, min_frames, max_frames,
                             variability)
    signers = make_signers(num_signers, seed, variability=variability)
    recipes = make_recipes(num_classes, seed)
    val_ids = {p.signer_id for p in signers[num_signers - val_signers:]}
    splits = ["val" if s.signer_id in val_ids else "train" for s in samples]

    stale = {p.stem for p in landmarks_dir.glob("*.npy")} - {s.video_id for s in samples}
    if stale:
        log.warning("%s holds %d .npy files not in the new index (left untouched)", landmarks_dir, len(stale))
    for sample in samples:
        atomic_save_npy(landmarks_dir / f"{sample.video_id}.npy", sample.raw)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["video_id", "gloss", "signer_id", "split"])
    writer.writerows([s.video_id, s.gloss, s.signer_id, split] for s, split in zip(samples, splits))
    with atomic_write(out_dir / "index.csv", "w") as handle:
        handle.write(buffer.getvalue())

    instances: dict[str, list] = {r.gloss: [] for r in recipes}
    for s, split in zip(samples, splits):
        instances[s.gloss].append({"video_id": s.video_id, "signer_id": s.signer_id, "split": split,
                                   "frame_start": 1, "frame_end": -1})
    with atomic_write(out_dir / "index.json", "w") as handle:
        json.dump([{"gloss": g, "instances": inst} for g, inst in instances.items()], handle, indent=1)

    label_names = [r.gloss for r in recipes]
    csv_paths = {}
    for split in ("train", "val"):
        chosen = [i for i, sp in enumerate(splits) if sp == split]
        if not chosen:
            continue
        sequence_set = SequenceSet.from_sequences(
            [layout.raw_to_spoter(samples[i].raw) for i in chosen], [samples[i].label for i in chosen], label_names,
            video_ids=[samples[i].video_id for i in chosen], signer_ids=[samples[i].signer_id for i in chosen],
            splits=[split] * len(chosen))
        csv_paths[split] = out_dir / f"{name}_{split}.csv"
        write_spoter_csv(sequence_set, csv_paths[split])

    parameters = dict(num_classes=num_classes, num_signers=num_signers,
                      samples_per_class_per_signer=samples_per_class_per_signer, val_signers=val_signers,
                      seed=seed, min_frames=min_frames, max_frames=max_frames, name=name)
    summary = {
        "num_samples": len(samples),
        "num_frames": int(sum(len(s.raw) for s in samples)),
        "train_samples": splits.count("train"), "val_samples": splits.count("val"),
        "val_signer_ids": sorted(val_ids),
        "files": {"landmarks": str(landmarks_dir), "index_csv": str(out_dir / "index.csv"),
                  "index_json": str(out_dir / "index.json"), "dataset_json": str(out_dir / "dataset.json"),
                  **{f"{split}_csv": str(path) for split, path in csv_paths.items()}},
    }
    document = {
        "generator": "datasets.synthetic", "version": GENERATOR_VERSION, "parameters": parameters,
        "variability": asdict(variability),
        "summary": {k: v for k, v in summary.items() if k != "files"},
        "signers": [asdict(p) for p in signers], "classes": [_recipe_summary(r) for r in recipes],
    }
    with atomic_write(out_dir / "dataset.json", "w") as handle:
        json.dump(document, handle, indent=1)
    return summary


def main(argv=None) -> int:
    """``python -m datasets.synthetic OUT_DIR [--classes N ...]``: write a synthetic dataset."""
    import argparse
    parser = argparse.ArgumentParser(description="Write a synthetic sign-language landmark dataset.")
    parser.add_argument("out_dir")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--signers", type=int, default=12)
    parser.add_argument("--samples", type=int, default=2, help="samples per class per signer")
    parser.add_argument("--val-signers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-frames", type=int, default=30)
    parser.add_argument("--max-frames", type=int, default=120)
    parser.add_argument("--name", default="synthetic", help="prefix of the SPOTER CSV files")
    args = parser.parse_args(argv)
    try:
        summary = write_synthetic_dataset(args.out_dir, args.classes, args.signers, args.samples, args.val_signers,
                                          args.seed, args.min_frames, args.max_frames, args.name)
    except UsageError as error:
        parser.exit(2, f"error: {error}\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
