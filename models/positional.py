"""Positional encodings for frame sequences ``(B, T, D)``.

All three add a ``(T, D)`` (or ``(1, D)``) term to the frames and index it with
``arange(T)``-style slicing, never with a Python branch on ``T``, so
``torch.onnx.export(dynamo=True)`` keeps the frame axis dynamic.
"""
from __future__ import annotations

import math

import torch
from torch import nn

POSITIONAL_ENCODINGS = ("learned", "sinusoidal", "single")


class LearnedPositionalEncoding(nn.Module):
    """A learned vector per frame index; clips longer than ``max_frames`` are an error."""

    def __init__(self, dim: int, max_frames: int):
        super().__init__()
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        self.max_frames = max_frames
        # Small init (as in GPT/ViT) so the pose signal dominates at the start of training.
        self.table = nn.Parameter(torch.randn(max_frames, dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[1]
        # _check_with raises ValueError in eager mode and becomes a runtime assert
        # (a shape constraint) under torch.export instead of a graph break.
        torch._check_with(
            ValueError,
            frames <= self.max_frames,
            lambda: f"clip has {frames} frames but the learned positional table holds "
            f"max_frames={self.max_frames}; crop/resample the clip or rebuild the model "
            "with a larger max_frames (or positional_encoding='sinusoidal')",
        )
        return x + self.table[:frames]  # (B, T, D) + (T, D)


class SinusoidalPositionalEncoding(nn.Module):
    """Fixed sin/cos encoding (Vaswani et al.), computed on the fly: no length limit."""

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        half = (dim + 1) // 2
        inv_freq = torch.exp(-math.log(base) * torch.arange(half, dtype=torch.float32) * 2.0 / dim)
        self.dim = dim
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(x.shape[1], device=x.device, dtype=self.inv_freq.dtype)  # (T,)
        angles = positions[:, None] * self.inv_freq[None, :]  # (T, ceil(D/2))
        # Interleave sin/cos -> (T, 2*ceil(D/2)), then drop the extra column for odd D.
        table = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(1)[:, : self.dim]
        return x + table.to(x.dtype)


class SinglePositionalEncoding(nn.Module):
    """The published SPOTER encoding: ONE learned vector added to every frame.

    Because every frame gets the same offset, attention is permutation-equivariant and
    the model is blind to frame order (a sign played backwards gives the same embedding).
    Kept for reproducing the published model; prefer ``"learned"`` or ``"sinusoidal"``.
    """

    def __init__(self, dim: int):
        super().__init__()
        # The published model initialises with torch.rand (uniform in [0, 1)).
        self.vector = nn.Parameter(torch.rand(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.vector  # (B, T, D) + (D,)


def build_positional_encoding(kind: str, dim: int, max_frames: int) -> nn.Module:
    """Positional encoding module by name (one of :data:`POSITIONAL_ENCODINGS`)."""
    if kind == "learned":
        return LearnedPositionalEncoding(dim, max_frames)
    if kind == "sinusoidal":
        return SinusoidalPositionalEncoding(dim)
    if kind == "single":
        return SinglePositionalEncoding(dim)
    raise ValueError(f"unknown positional_encoding {kind!r}; choose one of {', '.join(POSITIONAL_ENCODINGS)}")
