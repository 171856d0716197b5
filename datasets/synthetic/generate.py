"""One sample, and every sample of a dataset: a recipe signed by a signer, as raw landmarks.

:func:`generate_sample` runs its steps in a fixed order (timeline, hand targets,
handshapes, palm orientations, arms, body pose, camera, detector). Each step draws
from the sample's generator in turn, so the order of the steps and of the draws
inside them is part of the data (see :mod:`datasets.synthetic.seeds`).

Everything is computed for a right-handed signer; left-handed signers are mirrored
at the end (x -> -x with left/right labels swapped), so their dominant hand is
MediaPipe's *left* hand. The output is the raw layout of :mod:`datasets.layout`
(the person's right shoulder at image left, as an unmirrored camera sees it); hands
lowered out of the frame are undetected, as on real webcam recordings.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from datasets import layout
from datasets.errors import UsageError
from datasets.synthetic.body import FACE_INDEX, FACE_TEMPLATE, LOWER_INDEX, arm_elbows, lower_body
from datasets.synthetic.hands import (DEG, EXTENDED_JOINT, HANDSHAPES, LAX, PALM_POINTS, SHAPE_HIGH, SHAPE_JITTER,
                                      SHAPE_LOW, hand_points)
from datasets.synthetic.motion import (WOBBLE_SCALES, core_path, hand_track_lost, minimum_jerk, normal_cdf,
                                       smooth_noise, time_warp)
from datasets.synthetic.seeds import SAMPLE_STREAM, STYLE_STREAM
from datasets.synthetic.signers import SignerProfile, Variability, make_signers
from datasets.synthetic.vocabulary import SignRecipe, make_recipes

STYLE_SIZE = 40  # standard-normal draws per (signer, class), see generate_sample
REST_ORIENTATION = np.array([180.0, 0.0, -90.0])  # (roll, pitch, yaw) of a hand resting low
_MIRROR_X = np.array([-1.0, 1.0, 1.0])  # own side (right) -> the other side, in the body frame



@dataclass
class SyntheticSample:
    """One generated sequence in the raw layout (float32 ``(T, 150)``)."""

    raw: np.ndarray
    label: int
    gloss: str
    signer_id: str
    video_id: str
    left_handed: bool = field(default=False, repr=False)


@dataclass(frozen=True)
class _Timeline:
    """When the sign happens in the clip: rest, rise, core (the sign), lower, rest."""

    t: np.ndarray       # (T,) frame centres in [0, 1]
    tt: np.ndarray      # t shifted: clips often start or end mid-movement
    u: np.ndarray       # (T,) core time in [0, 1], warped by the signer's and the sample's tempo
    active: np.ndarray  # (T, 1) 0 at rest .. 1 while signing
    rest_start: float
    rise: float
    fall: float
    core_end: float


def _timeline(signer: SignerProfile, rng, num_frames: int, v: Variability) -> _Timeline:
    """The share of the clip spent signing follows the signer's speed; the rest is idle."""
    t = (np.arange(num_frames) + 0.5) / num_frames
    signing = np.clip(signer.speed + rng.normal(0, 0.07), 0.45, 0.98)
    idle = 1.0 - signing
    rest_start = idle * rng.uniform(0.1, 0.6)
    rise = min(rng.uniform(0.06, 0.11), signing * 0.25)
    fall = min(rng.uniform(0.06, 0.11), signing * 0.25)
    core_start, core_end = rest_start + rise, rest_start + signing - fall
    tt = t + rng.normal(0, v.timing_shift)
    u = time_warp(np.clip((tt - core_start) / (core_end - core_start), 0, 1),
                  np.clip(signer.warp + rng.normal(0, v.sample_warp), -0.6, 0.6), rng.uniform(-0.3, 0.3))
    w_in = minimum_jerk((tt - rest_start) / rise)
    w_out = minimum_jerk((tt - core_end) / fall)
    return _Timeline(t, tt, u, (w_in * (1 - w_out))[:, None], rest_start, rise, fall, core_end)


def _keypoints(recipe: SignRecipe, signer: SignerProfile, rng, style: np.ndarray, v: Variability):
    """Dominant-hand keypoints: class recipe + signer style + sample jitter, scaled by amplitude.

    Returns ``(keypoints, cycles, amplitude)``; some signers repeat a movement once more
    or once less than others.
    """
    keypoints = np.array(recipe.keypoints)
    keypoint_style = style[:9].reshape(3, 3)[:len(keypoints)]
    cycles = recipe.cycles
    if recipe.movement in ("repeat", "tap", "shake", "zigzag") and normal_cdf(style[13]) < v.repetition_change:
        cycles = max(1.0, cycles + (1.0 if style[14] > 0 else -1.0))
    amplitude = signer.amplitude * rng.normal(1.0, 0.08)
    keypoints = keypoints[:1] + amplitude * (keypoints - keypoints[:1])
    keypoints = keypoints + np.array(signer.space_offset)
    keypoints = keypoints + signer.style_sigma * keypoint_style * np.array([1, 1, 0.5])
    keypoints = keypoints + rng.normal(0, 0.025, keypoints.shape)
    return keypoints, cycles, amplitude


def _hand_centres(recipe: SignRecipe, signer: SignerProfile, rng, time: _Timeline, keypoints: np.ndarray,
                  amplitude: float, cycles: float):
    """Palm-centre targets ``(T, 3)`` of both hands, each in its own side's frame.

    Returns ``(dominant, non_dominant, nd_active, wobble)``: ``nd_active`` is how far the
    non-dominant hand is raised, ``wobble`` the sample's slow noise channels.
    """
    core = core_path(recipe, keypoints, time.u, amplitude, cycles=cycles)
    rest = np.array(signer.rest) + rng.normal(0, 0.03, 3)
    wobble = smooth_noise(rng, time.t, WOBBLE_SCALES)                          # (T, 22)
    dominant = rest + time.active * (core - rest) + wobble[:, 0:3]
    rest_nd = np.array(signer.rest) + rng.normal(0, 0.03, 3)
    if recipe.two_handed in ("symmetric", "alternating"):
        phase = np.pi if recipe.two_handed == "alternating" else 0.0
        nd_keys = keypoints + rng.normal(0, 0.03, keypoints.shape)
        nd_target, nd_active = core_path(recipe, nd_keys, time.u, amplitude, phase, cycles), time.active
    elif recipe.two_handed == "base":
        base = np.array(recipe.base_location) + np.array(signer.space_offset) * np.array([-1, 1, 1])
        nd_target = base + rng.normal(0, 0.02, 3)
        nd_in = minimum_jerk((time.tt - time.rest_start + 0.03) / time.rise)
        nd_active = (nd_in * (1 - minimum_jerk((time.tt - time.core_end - 0.03) / time.fall)))[:, None]
    else:
        nd_target, nd_active = rest_nd, np.zeros((len(time.t), 1))
    non_dominant = rest_nd + nd_active * (nd_target - rest_nd) + wobble[:, 3:6]
    return dominant, non_dominant, nd_active, wobble


def _handshapes(recipe: SignRecipe, signer: SignerProfile, rng, time: _Timeline, nd_active: np.ndarray,
                style: np.ndarray, v: Variability):
    """Handshape parameters ``(T, 17)`` of both hands: lax -> first shape -> second shape -> lax."""
    num_frames = len(time.t)
    shapes = [HANDSHAPES[h].copy() for h in recipe.handshapes]
    for s in shapes:
        fingers = s[:12]
        fingers += np.where(fingers < EXTENDED_JOINT, signer.laxness, -0.5 * signer.laxness)
        s += np.array(signer.handshape_style) + v.class_handshape_style * style[16:33] * SHAPE_JITTER
        fingers += rng.normal(0, 4, 12)
        s[13:] += rng.normal(0, 4, 4)
    change = (minimum_jerk((time.u - recipe.change_at - 0.06 * style[12]) / 0.18 + 0.5) if len(shapes) == 2
              else np.zeros(num_frames))
    sign_shape = shapes[0] + change[:, None] * (shapes[-1] - shapes[0])
    shape_dom = LAX + time.active * (sign_shape - LAX) + smooth_noise(rng, time.t, SHAPE_JITTER * v.shape_jitter, 4.0)
    if recipe.two_handed in ("symmetric", "alternating"):
        shape_nd = LAX + nd_active * (sign_shape - LAX)
    elif recipe.two_handed == "base":
        base_shape = HANDSHAPES[recipe.base_handshape] + rng.normal(0, 4, 17) * SHAPE_JITTER
        shape_nd = LAX + nd_active * (base_shape - LAX)
    else:
        shape_nd = np.broadcast_to(LAX, (num_frames, 17))
    # Keep every joint inside its anatomical range however the offsets add up.
    return np.clip(shape_dom, SHAPE_LOW, SHAPE_HIGH), np.clip(shape_nd, SHAPE_LOW, SHAPE_HIGH)


def _palm_orientations(recipe: SignRecipe, signer: SignerProfile, rng, time: _Timeline, nd_active: np.ndarray,
                       wobble: np.ndarray, style: np.ndarray, cycles: float):
    """(roll, pitch, yaw) in degrees ``(T, 3)`` of both hands over time."""
    bias = np.array(signer.orientation_bias)
    start, end = np.array(recipe.orientation) + bias, np.array(recipe.orientation_end) + bias
    twist = minimum_jerk(time.u)[:, None]
    ori_sign = start + twist * (end - start) + signer.orientation_style * style[9:12] + rng.normal(0, 6, 3)
    if recipe.movement == "shake":  # shakes also wobble the wrist
        ori_sign = ori_sign + (12 * np.sin(2 * np.pi * cycles * time.u))[:, None] * np.array([1.0, 0, 0.5])
    turn = np.array([0.0, 0.0, signer.body_yaw / DEG])  # a turned body turns the palms too
    ori_dom = REST_ORIENTATION + time.active * (ori_sign + turn - REST_ORIENTATION) + wobble[:, 6:9]
    if recipe.two_handed in ("symmetric", "alternating"):
        ori_nd_sign = ori_sign + rng.normal(0, 6, 3)
    elif recipe.two_handed == "base":
        ori_nd_sign = np.array(recipe.base_orientation) + rng.normal(0, 6, 3)
    else:
        ori_nd_sign = REST_ORIENTATION
    ori_nd = REST_ORIENTATION + nd_active * (ori_nd_sign - turn - REST_ORIENTATION) + wobble[:, 9:12]
    return ori_dom, ori_nd


def _arms_and_hands(signer: SignerProfile, shapes: np.ndarray, orientations: np.ndarray, centres: np.ndarray):
    """Both hands posed at their targets, and the arms that reach them (body frame).

    Inputs stack the dominant then the non-dominant hand along the first axis
    (``2T`` rows). Returns ``(hands, wrists, elbows, shoulders)`` shaped ``(2, T, ...)``,
    index 0 = dominant (right side), 1 = non-dominant, mirrored onto the left side.
    """
    num_frames = len(shapes) // 2
    ori = orientations * DEG
    hands = hand_points(shapes, ori[:, 0], ori[:, 1], ori[:, 2], signer.finger_proportions)
    perspective = 1.0 + 0.12 * (centres[:, 2] - 0.5)
    hands *= (signer.hand_size * perspective)[:, None, None]
    palm = hands[:, PALM_POINTS].mean(axis=1)
    wrists = centres - palm                                                  # (2T, 3)
    hands = hands + wrists[:, None, :]
    # Shoulders lift a little when the hand is high; elbows by IK (own side = right).
    lift = 0.06 * np.clip((0.4 - wrists[:, 1]) / 1.2, 0, 1)
    shoulders = np.stack([np.full(2 * num_frames, -0.5), -lift, np.zeros(2 * num_frames)], -1)
    elbows = arm_elbows(shoulders, wrists, 0.8 * signer.arm, 0.75 * signer.arm)
    hands = hands.reshape(2, num_frames, layout.NUM_HAND, 3)
    hands[1] *= _MIRROR_X
    wrists, elbows, shoulders = (a.reshape(2, num_frames, 3) for a in (wrists, elbows, shoulders))
    wrists[1] *= _MIRROR_X
    elbows[1] *= _MIRROR_X
    shoulders[1] *= _MIRROR_X
    return hands, wrists, elbows, shoulders


def _face(recipe: SignRecipe, signer: SignerProfile, time: _Timeline, wobble: np.ndarray) -> np.ndarray:
    """Face points ``(T, 11, 2)``: the template turned, nodded and rolled with the head."""
    nose_y, head_size, head_x = signer.head
    head_motion = wobble[:, 12:15].copy()                 # yaw, pitch, roll (radians)
    head_motion[:, 0] += 0.8 * signer.body_yaw
    if recipe.head != "none":
        nod = 0.25 * np.sin(2 * np.pi * 2.5 * time.u) * time.active[:, 0]
        head_motion[:, 1 if recipe.head == "nod" else 0] += nod
    face = FACE_TEMPLATE[None, :, :2] * head_size
    depth = FACE_TEMPLATE[None, :, 2] * head_size * 0.22
    face = face + np.stack([head_motion[:, :1] * depth, head_motion[:, 1:2] * depth], -1)
    roll = head_motion[:, 2:3]
    fx, fy = face[..., 0], face[..., 1]
    face = np.stack([np.cos(roll) * fx - np.sin(roll) * fy, np.sin(roll) * fx + np.cos(roll) * fy], -1)
    return face + np.array([head_x, -nose_y]) + wobble[:, None, 15:17]


def _body_pose(recipe: SignRecipe, signer: SignerProfile, time: _Timeline, wobble: np.ndarray,
               hands: np.ndarray, wrists: np.ndarray, elbows: np.ndarray, shoulders: np.ndarray):
    """The 33 pose points ``(T, 33, 2)`` and both hands' x, y ``(2, T, 21, 2)``, body frame.

    ``hand_xy[0]`` is the person's right hand, ``hand_xy[1]`` the left; left-handed
    signers are mirrored here, with their left/right labels swapped.
    """
    pose = np.zeros((len(time.t), layout.NUM_POSE, 2))
    pose[:, FACE_INDEX] = _face(recipe, signer, time, wobble)
    for side, prefix in ((0, "right"), (1, "left")):
        h = hands[side]
        pose[:, layout.POSE_INDEX[f"{prefix}_shoulder"]] = shoulders[side][:, :2]
        pose[:, layout.POSE_INDEX[f"{prefix}_elbow"]] = elbows[side][:, :2]
        wrist_offset = np.array(signer.wrist_offset) * (_MIRROR_X[:2] if side else 1.0)
        pose[:, layout.POSE_INDEX[f"{prefix}_wrist"]] = wrists[side][:, :2] + wrist_offset
        pose[:, layout.POSE_INDEX[f"{prefix}_pinky"]] = h[:, layout.HAND_INDEX["pinky_mcp"], :2]
        knuckle = 0.6 * h[:, layout.HAND_INDEX["index_finger_mcp"]] + 0.4 * h[:, layout.HAND_INDEX["index_finger_pip"]]
        pose[:, layout.POSE_INDEX[f"{prefix}_index"]] = knuckle[:, :2]
        pose[:, layout.POSE_INDEX[f"{prefix}_thumb"]] = h[:, layout.HAND_INDEX["thumb_ip"], :2]
    pose[:, LOWER_INDEX] = lower_body(signer) + wobble[:, None, 17:19]
    hand_xy = hands[..., :2]
    if signer.left_handed:
        pose = pose[:, layout.POSE_MIRROR_PERMUTATION] * np.array([-1.0, 1.0])
        hand_xy = hand_xy[::-1] * np.array([-1.0, 1.0])
    return pose, hand_xy


def _to_image(signer: SignerProfile, rng, wobble: np.ndarray, pose: np.ndarray, hand_xy: np.ndarray):
    """Body frame -> normalised image coordinates: lean + slow sway, scale, aspect, offset."""
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

    return to_image(pose), to_image(hand_xy)


def _detector(signer: SignerProfile, rng, pose_img: np.ndarray, hands_img: np.ndarray) -> np.ndarray:
    """What MediaPipe would report: jitter, hands lost out of frame / when fast / at random, rare pose loss."""
    num_frames = len(pose_img)
    unit = signer.scale_y  # one shoulder width in image-height units
    pose_img += rng.normal(0, signer.pose_noise * unit, pose_img.shape) * np.array([1 / signer.aspect, 1])
    hands_img += (rng.normal(0, signer.hand_noise * unit, hands_img.shape)
                  + rng.normal(0, signer.hand_noise * unit, (2, num_frames, 1, 2))) * np.array([1 / signer.aspect, 1])
    centre = hands_img.mean(axis=2)                                           # (2, T, 2)
    in_frame = np.all((centre > 0.01) & (centre < 0.97), axis=-1)
    # Tracks are lost more often when the hand moves fast (blur) or is low, near the frame edge.
    speed = np.linalg.norm(np.diff(centre, axis=1, prepend=centre[:, :1]), axis=-1) / unit * num_frames / 60
    low = np.clip((centre[..., 1] - 0.8) / 0.17, 0, 1)
    rate = signer.dropout_rate * (1 + 2 * np.clip(speed - 0.05, 0, 1) + 4 * low)
    lost = np.stack([hand_track_lost(rng, num_frames, rate[0]), hand_track_lost(rng, num_frames, rate[1])])
    detected = in_frame & ~lost
    hands_img = np.where(detected[..., None, None], hands_img, 0.0)
    pose_lost = np.zeros(num_frames, bool)
    if rng.random() < 0.25:
        pose_lost = hand_track_lost(rng, num_frames, np.full(num_frames, rng.uniform(0.005, 0.02)), mean_run=2.0)
    raw = np.concatenate([pose_img, hands_img[1], hands_img[0]], axis=1)   # pose, left, right
    raw[pose_lost] = 0.0
    return raw.reshape(num_frames, layout.RAW_FEATURES).astype(np.float32)


def generate_sample(recipe: SignRecipe, signer: SignerProfile, rng: np.random.Generator,
                    num_frames: int, style: np.ndarray | None = None,
                    variability: Variability | None = None) -> np.ndarray:
    """One sequence of ``recipe`` by ``signer``: raw landmarks ``(num_frames, 150)`` float32.

    ``style`` holds :data:`STYLE_SIZE` standard-normal draws fixed per (signer, class):
    the signer's personal way of placing and orienting this sign's hands.
    """
    v = variability or Variability()
    style = np.zeros(STYLE_SIZE) if style is None else np.asarray(style, dtype=np.float64)
    time = _timeline(signer, rng, int(num_frames), v)
    keypoints, cycles, amplitude = _keypoints(recipe, signer, rng, style, v)
    dominant, non_dominant, nd_active, wobble = _hand_centres(recipe, signer, rng, time, keypoints, amplitude, cycles)
    shape_dom, shape_nd = _handshapes(recipe, signer, rng, time, nd_active, style, v)
    ori_dom, ori_nd = _palm_orientations(recipe, signer, rng, time, nd_active, wobble, style, cycles)
    hands, wrists, elbows, shoulders = _arms_and_hands(
        signer, np.concatenate([shape_dom, shape_nd]), np.concatenate([ori_dom, ori_nd]),
        np.concatenate([dominant, non_dominant]))
    pose, hand_xy = _body_pose(recipe, signer, time, wobble, hands, wrists, elbows, shoulders)
    pose_img, hands_img = _to_image(signer, rng, wobble, pose, hand_xy)
    return _detector(signer, rng, pose_img, hands_img)


def check_args(num_classes, num_signers, samples_per_class_per_signer, min_frames, max_frames):
    """One-line errors for sizes the generator cannot honour."""
    if num_classes < 1 or num_signers < 1 or samples_per_class_per_signer < 1:
        raise UsageError("num_classes, num_signers and samples_per_class_per_signer must all be >= 1 "
                         f"(got {num_classes}, {num_signers}, {samples_per_class_per_signer})")
    if not 2 <= min_frames <= max_frames:
        raise UsageError(f"need 2 <= min_frames <= max_frames, got {min_frames}..{max_frames}")


def generate_signs(num_classes: int = 100, num_signers: int = 12, samples_per_class_per_signer: int = 2,
                   seed: int = 0, min_frames: int = 30, max_frames: int = 120,
                   variability: Variability | None = None) -> list[SyntheticSample]:
    """Every class signed by every signer ``samples_per_class_per_signer`` times (class-major order)."""
    check_args(num_classes, num_signers, samples_per_class_per_signer, min_frames, max_frames)
    recipes = make_recipes(num_classes, seed)
    signers = make_signers(num_signers, seed, variability=variability)
    samples = []
    for label, recipe in enumerate(recipes):
        styles = [np.random.default_rng([seed, STYLE_STREAM, label, s]).standard_normal(STYLE_SIZE)
                  for s in range(num_signers)]
        for s, signer in enumerate(signers):
            for rep in range(samples_per_class_per_signer):
                rng = np.random.default_rng([seed, SAMPLE_STREAM, label, s, rep])
                frames = int(rng.integers(min_frames, max_frames + 1))
                raw = generate_sample(recipe, signer, rng, frames, styles[s], variability)
                samples.append(SyntheticSample(raw, label, recipe.gloss, signer.signer_id,
                                               f"{recipe.gloss}_{signer.signer_id}_{rep:02d}", signer.left_handed))
    return samples
