"""Hand-shape features that do not depend on who signs: distances within each hand over its palm size.

Why: the hand shape carries much of what separates signs, but the coordinates also
carry each person's hand size, finger proportions and the angle at which they hold the
hand. Distances between fingertips, and from each
fingertip to the wrist and to its own knuckle, divided by the palm length (wrist to
middle-finger knuckle), describe how open, spread and curled the hand is, independent of
its size, of where it is and of its in-plane rotation.

The features are computed from the model's input inside the model (so evaluation, export
and the browser need nothing new), from the hand points as the ``centered`` or ``spoter``
normalisation leaves them: each hand's square box scaled uniformly, which ratios of
distances do not see. They enter the frame vector through a linear map that starts at
zero, so an untrained model with them equals the same model without them.
"""
from __future__ import annotations

import itertools

import torch
from torch import nn

from datasets import layout

_TIPS = ("thumbTip", "indexTip", "middleTip", "ringTip", "littleTip")
_KNUCKLES = ("thumbMP", "indexMCP", "middleMCP", "ringMCP", "littleMCP")
PALM = ("wrist", "middleMCP")
# (a, b) point names within one hand: tip-wrist, tip-own knuckle, every tip-tip pair.
PAIRS = (tuple(("wrist", tip) for tip in _TIPS) + tuple(zip(_TIPS, _KNUCKLES))
         + tuple(itertools.combinations(_TIPS, 2)))
MAX_RATIO = 4.0  # a distance over the palm beyond this is a detection glitch, not a hand shape


def _hand_index(name: str) -> int:
    return layout.HAND_POINTS.index(name)


def features_per_frame() -> int:
    """How many numbers :func:`hand_shape_features` gives per frame (both hands)."""
    return len(layout.HAND_SLICES) * len(PAIRS)


def hand_shape_features(landmarks: torch.Tensor) -> torch.Tensor:
    """(B, T, 54, 2) normalised clips -> (B, T, 2 * len(PAIRS)) distance ratios, left hand first.

    A hand that was not detected in a frame (all its points 0) gives zeros there, as
    the coordinates do. Written with gathers, sums and a square root only, so it exports
    to ONNX and TFLite as it is.
    """
    first = torch.tensor([_hand_index(a) for a, _ in PAIRS] + [_hand_index(PALM[0])], device=landmarks.device)
    second = torch.tensor([_hand_index(b) for _, b in PAIRS] + [_hand_index(PALM[1])], device=landmarks.device)
    out = []
    for hand in layout.HAND_SLICES:
        points = landmarks[..., hand, :]                                            # (B, T, 21, 2)
        gap = points.index_select(-2, first) - points.index_select(-2, second)      # (B, T, pairs + 1, 2)
        length = torch.sqrt(gap.pow(2).sum(-1) + 1e-12)                             # (B, T, pairs + 1)
        palm = length[..., -1:]
        detected = points.abs().sum((-1, -2)).unsqueeze(-1) > 0                     # (B, T, 1)
        ratio = torch.clamp(length[..., :-1] / torch.clamp(palm, min=1e-3), max=MAX_RATIO)
        out.append(torch.where(detected, ratio, torch.zeros_like(ratio)))
    return torch.cat(out, dim=-1)


class HandShapeInput(nn.Module):
    """Adds a learned linear map of :func:`hand_shape_features` to each frame's vector (zero at init)."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(features_per_frame(), dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) frame vectors, landmarks (B, T, 54, 2) -> (B, T, D)."""
        return x + self.proj(hand_shape_features(landmarks))


__all__ = ["PAIRS", "HandShapeInput", "features_per_frame", "hand_shape_features"]
