"""Signers: each one's body, framing, handedness and personal style, and the variability knobs.

Profile ``s`` is drawn from its own generator seeded by ``(seed, SIGNER_STREAM, s)``,
so a signer does not change when more signers are requested. Proportions follow
real webcam recordings: shoulders 0.36-0.56 of the image height, 4:3 or 16:9
frames, palm ~0.3 shoulder widths.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasets.synthetic.hands import DEG, SHAPE_JITTER
from datasets.synthetic.seeds import SIGNER_STREAM

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

def make_signers(num_signers: int, seed: int = 0, left_handed_fraction: float = 0.2,
                 variability: Variability | None = None) -> list[SignerProfile]:
    """Signer profiles ``0..num_signers-1``; profile ``s`` depends only on ``seed`` and ``s``."""
    v = variability or Variability()
    signers = []
    for s in range(num_signers):
        rng = np.random.default_rng([seed, SIGNER_STREAM, s])
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
            lean=float(rng.normal(0, 3) * DEG),
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
            body_yaw=float(rng.normal(0, v.body_yaw) * DEG),
            space_offset=tuple(float(x) for x in (*rng.normal(0, 0.05, 2), 0.0)),
            style_sigma=float(rng.uniform(*v.style_sigma)),
            orientation_style=float(rng.uniform(*v.orientation_style)),
            laxness=float(rng.uniform(*v.laxness)),
            handshape_style=tuple(float(x) for x in rng.normal(0, v.handshape_style, 17) * SHAPE_JITTER),
            orientation_bias=tuple(float(x) for x in rng.normal(0, [8, 6, 10])),
            pose_noise=float(rng.uniform(0.0015, 0.006)),
            hand_noise=float(rng.uniform(*v.hand_noise)),
            dropout_rate=float(rng.uniform(*v.dropout_rate)),
            wrist_offset=tuple(float(x) for x in rng.normal(0, 0.025, 2)),
        ))
    return signers
