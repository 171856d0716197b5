"""A temporal convolution front-end: residual depthwise Conv1D blocks over the frames.

Why: attention compares every frame with every other one, but the cue that separates
many signs is local in time — how a hand shape or position changes over a few frames.
A depthwise convolution over time sees exactly that neighbourhood, per feature, at a
cost linear in the clip length; placed before the encoder it hands attention frames
that already carry their local motion. (The winning Kaggle Isolated Sign Language
Recognition models stacked such blocks with attention.)

Each block is pre-norm and residual::

    x + dropout(project(silu(depthwise_conv(expand(layer_norm(x))))))

* padded frames are zeroed before every convolution, so a clip's real frames see the
  same zeros whether it is padded or not (a padded clip embeds like the unpadded one);
* the convolution is "same"-padded with an odd kernel, so frame t stays at t;
* ``project`` starts at zero: an untrained front-end is the identity, so an untrained
  model with it equals the same model without it (same seed, same weights elsewhere) and
  the untrained baseline of a recipe with the front-end is the preset's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TemporalConvBlock(nn.Module):
    """One pre-norm residual block: expand, depthwise Conv1D over time, SiLU, project back."""

    def __init__(self, dim: int, kernel: int, expansion: int = 2, dropout: float = 0.0):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"the temporal kernel must be a positive odd number of frames, got {kernel}")
        inner = dim * expansion
        self.norm = nn.LayerNorm(dim)
        self.expand = nn.Linear(dim, inner)
        self.depthwise = nn.Conv1d(inner, inner, kernel, padding=kernel // 2, groups=inner)
        self.project = nn.Linear(inner, dim)
        nn.init.zeros_(self.project.weight)
        nn.init.zeros_(self.project.bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        """(B, T, D), (B, T) bool (True = padded) -> (B, T, D)."""
        h = self.expand(self.norm(x))
        if padding_mask is not None:
            h = h.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        h = self.depthwise(h.transpose(1, 2)).transpose(1, 2)  # convolve over T, per channel
        return x + self.dropout(self.project(F.silu(h)))


class TemporalConvFrontEnd(nn.Module):
    """``blocks`` TemporalConvBlocks in sequence (the frames' features keep their width)."""

    def __init__(self, dim: int, blocks: int, kernel: int, dropout: float = 0.0):
        super().__init__()
        self.blocks = nn.ModuleList(TemporalConvBlock(dim, kernel, dropout=dropout) for _ in range(blocks))

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, padding_mask)
        return x


def conv_macs_per_sample(dim: int, blocks: int, kernel: int, frames: int, expansion: int = 2) -> int:
    """Multiply-adds of the front-end for one clip of ``frames`` frames (expand, depthwise, project)."""
    inner = dim * expansion
    return blocks * frames * (dim * inner + inner * kernel + inner * dim)


__all__ = ["TemporalConvBlock", "TemporalConvFrontEnd", "conv_macs_per_sample"]
