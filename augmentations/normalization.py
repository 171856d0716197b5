"""SPOTER's body and hand normalisation, vectorised over frames and batch.

Works on any ``(..., 54, 2)`` array in image coordinates with 0 for undetected
points, as numpy arrays or torch tensors (the same code runs on both, so both give
the same numbers). Output coordinates are centred on 0 (the published ``- 0.5``
shift is part of the definition); undetected points come out as exactly 0, and
nothing is ever divided by a zero-sized box.

Body variants (``body=``):

* ``"centered"`` (default): a square signing space 6 head units wide and high, its
  top half a head unit above the eyes and centred horizontally on the neck; the head
  unit is the shoulder distance (SPOTER's choice), or the neck–nose distance when a
  shoulder is missing. Image y points down, so the space extends below the face.
* ``"spoter"``: the published formula as written, including its clamping of box
  corners at 0 and its box that starts half a head unit below the left eye and
  extends upwards (it assumed y pointing up). Kept to reproduce published numbers.

Hands: each hand's bounding box (present points only), padded by 10% of its longer
side and made square, maps to [0, 1] before the shift, as in SPOTER.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from datasets import layout

BODY_VARIANTS = ("centered", "spoter", "none")
SIGNING_SPACE_HEAD_UNITS = 6.0
HAND_BOX_PADDING = 0.1
CENTER_SHIFT = 0.5


def _backend(x):
    if isinstance(x, np.ndarray):
        return SimpleNamespace(
            where=np.where, sqrt=np.sqrt, inf=np.inf,
            amin=lambda a, dim: a.min(axis=dim), amax=lambda a, dim: a.max(axis=dim),
            maximum=np.maximum, zeros_like=np.zeros_like,
        )
    import torch
    return SimpleNamespace(
        where=torch.where, sqrt=torch.sqrt, inf=float("inf"),
        amin=lambda a, dim: a.amin(dim=dim), amax=lambda a, dim: a.amax(dim=dim),
        maximum=torch.maximum, zeros_like=torch.zeros_like,
    )


def _present(points):
    return (points != 0).any(-1)


def _distance(a, b, xp):
    return xp.sqrt(((a - b) ** 2).sum(-1))


def _head_unit(points, xp):
    """Shoulder distance, else neck–nose distance; 0 where neither can be measured."""
    present = _present(points)
    shoulders = present[..., layout.LEFT_SHOULDER] & present[..., layout.RIGHT_SHOULDER]
    neck_nose = present[..., layout.NECK] & present[..., layout.NOSE]
    by_shoulders = _distance(points[..., layout.LEFT_SHOULDER, :], points[..., layout.RIGHT_SHOULDER, :], xp)
    by_nose = _distance(points[..., layout.NECK, :], points[..., layout.NOSE, :], xp)
    return xp.where(shoulders, by_shoulders, xp.where(neck_nose, by_nose, by_nose * 0))


def _normalize_body(points, variant: str, xp):
    body = points[..., layout.BODY_SLICE, :]
    present = _present(body)
    head = _head_unit(points, xp)                                  # (...,)
    valid = head > 0
    safe_head = xp.where(valid, head, head * 0 + 1)
    neck = points[..., layout.NECK, :]
    if variant == "centered":
        eyes = points[..., [layout.LEFT_EYE, layout.RIGHT_EYE], 1]  # (..., 2) y of both eyes
        eyes_present = _present(points[..., [layout.LEFT_EYE, layout.RIGHT_EYE], :])
        eye_count = eyes_present.sum(-1)
        eye_y = xp.where(eye_count > 0, (eyes * eyes_present).sum(-1) / xp.maximum(eye_count, eye_count * 0 + 1),
                         neck[..., 1] - safe_head)
        size = SIGNING_SPACE_HEAD_UNITS * safe_head
        left = neck[..., 0] - size / 2
        top = eye_y - safe_head / 2
        x = (body[..., 0] - left[..., None]) / size[..., None]
        y = (body[..., 1] - top[..., None]) / size[..., None]
    elif variant == "spoter":
        start_x = neck[..., 0] - 3 * safe_head
        start_y = points[..., layout.LEFT_EYE, 1] + safe_head / 2
        end_x = neck[..., 0] + 3 * safe_head
        end_y = start_y - SIGNING_SPACE_HEAD_UNITS * safe_head
        start_x, start_y, end_x, end_y = (xp.where(v < 0, v * 0, v) for v in (start_x, start_y, end_x, end_y))
        width, height = end_x - start_x, start_y - end_y
        ok = (width != 0) & (height != 0)
        valid = valid & ok
        width, height = xp.where(ok, width, width * 0 + 1), xp.where(ok, height, height * 0 + 1)
        x = (body[..., 0] - start_x[..., None]) / width[..., None]
        y = (body[..., 1] - end_y[..., None]) / height[..., None]
    else:
        raise ValueError(f"unknown body normalisation {variant!r}; choose from {', '.join(BODY_VARIANTS)}")
    keep = present & valid[..., None]
    return xp.where(keep, x - CENTER_SHIFT, x * 0), xp.where(keep, y - CENTER_SHIFT, y * 0)


def _normalize_hand(hand, xp):
    present = _present(hand)                                       # (..., 21)
    big = xp.inf
    lo_x = xp.amin(xp.where(present, hand[..., 0], hand[..., 0] * 0 + big), -1)
    hi_x = xp.amax(xp.where(present, hand[..., 0], hand[..., 0] * 0 - big), -1)
    lo_y = xp.amin(xp.where(present, hand[..., 1], hand[..., 1] * 0 + big), -1)
    hi_y = xp.amax(xp.where(present, hand[..., 1], hand[..., 1] * 0 - big), -1)
    any_point = present.any(-1)
    zero = hand[..., 0, 0] * 0
    width = xp.where(any_point, hi_x - lo_x, zero)
    height = xp.where(any_point, hi_y - lo_y, zero)
    wider = width > height
    delta_x = xp.where(wider, HAND_BOX_PADDING * width, HAND_BOX_PADDING * height + (height - width) / 2)
    delta_y = xp.where(wider, HAND_BOX_PADDING * width + (width - height) / 2, HAND_BOX_PADDING * height)
    span_x, span_y = width + 2 * delta_x, height + 2 * delta_y
    usable = any_point & (span_x > 0) & (span_y > 0)
    span_x = xp.where(usable, span_x, span_x * 0 + 1)
    span_y = xp.where(usable, span_y, span_y * 0 + 1)
    start_x = xp.where(usable, lo_x - delta_x, zero)
    start_y = xp.where(usable, lo_y - delta_y, zero)
    x = (hand[..., 0] - start_x[..., None]) / span_x[..., None] - CENTER_SHIFT
    y = (hand[..., 1] - start_y[..., None]) / span_y[..., None] - CENTER_SHIFT
    keep = present & usable[..., None]
    return xp.where(keep, x, x * 0), xp.where(keep, y, y * 0)


def normalize(points, body: str = "centered", hands: bool = True):
    """Normalise ``(..., 54, 2)`` points (numpy or torch); returns a new array of the same kind."""
    xp = _backend(points)
    if points.shape[-2:] != (layout.NUM_POINTS, layout.NUM_COORDS):
        raise ValueError(f"expected (..., {layout.NUM_POINTS}, 2) points, got shape {tuple(points.shape)}")
    out = xp.zeros_like(points)
    if body == "none":
        out[..., layout.BODY_SLICE, :] = points[..., layout.BODY_SLICE, :]
    else:
        bx, by = _normalize_body(points, body, xp)
        out[..., layout.BODY_SLICE, 0], out[..., layout.BODY_SLICE, 1] = bx, by
    for hand_slice in layout.HAND_SLICES:
        if hands:
            hx, hy = _normalize_hand(points[..., hand_slice, :], xp)
            out[..., hand_slice, 0], out[..., hand_slice, 1] = hx, hy
        else:
            out[..., hand_slice, :] = points[..., hand_slice, :]
    return out
