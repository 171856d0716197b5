"""Pairwise distance matrices for metric learning (smaller = more similar).

``distance(x)`` gives the (B, B) matrix of a batch with itself, with an exact zero
diagonal; ``distance(x, y)`` gives (Bx, By). Both are built from one matrix product,
so memory is O(B^2), not O(B^2 * D).
"""
from __future__ import annotations

import torch
from torch import nn


class BaseDistance(nn.Module):
    """Subclasses implement :meth:`pairwise`; ``forward`` checks shapes and zeroes self-distances."""

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 2:
            raise ValueError(f"embeddings must be 2-D (B, D), got shape {tuple(x.shape)}")
        if y is not None and (y.ndim != 2 or y.shape[1] != x.shape[1]):
            raise ValueError(f"reference embeddings must be (N, {x.shape[1]}), got shape {tuple(y.shape)}")
        dist = self.pairwise(x, x if y is None else y)
        if y is None:
            # Exactly 0 on the diagonal (the matrix-product formula leaves rounding noise).
            eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
            dist = dist.masked_fill(eye, 0.0)
        return dist

    def pairwise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class EuclideanDistance(BaseDistance):
    """L2 distance, with a zero (not NaN/inf) gradient where two embeddings coincide.

    ``d^2 = |x|^2 + |y|^2 - 2 x.y`` after centring both sets on x's mean (distances are
    translation invariant; centring shrinks the norms and with them the cancellation error).
    The square root is only taken where ``d^2 > eps``; elsewhere the distance is 0 with
    gradient 0, so duplicate embeddings in a batch do not poison the backward pass.
    """

    def __init__(self, eps: float = 1e-12):
        super().__init__()
        self.eps = eps

    def extra_repr(self) -> str:
        return f"eps={self.eps}"

    def pairwise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        center = x.mean(dim=0, keepdim=True)
        x, y = x - center, y - center
        sq = (x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1)[None, :] - 2.0 * x @ y.T).clamp_min(0.0)  # (Bx, By)
        positive = sq > self.eps
        return torch.where(positive, torch.sqrt(torch.where(positive, sq, torch.ones_like(sq))), torch.zeros_like(sq))


class CosineDistance(BaseDistance):
    """``1 - cos(x, y)`` in [0, 2]; scale invariant, so it ignores embedding norms."""

    def __init__(self, eps: float = 1e-12):
        super().__init__()
        self.eps = eps

    def extra_repr(self) -> str:
        return f"eps={self.eps}"

    def pairwise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        xn = x / torch.sqrt(x.pow(2).sum(1, keepdim=True) + self.eps)
        yn = y / torch.sqrt(y.pow(2).sum(1, keepdim=True) + self.eps)
        return (1.0 - xn @ yn.T).clamp(0.0, 2.0)


def same_distance(a: BaseDistance | None, b: BaseDistance | None) -> bool:
    """True if the two distance objects compute the same thing (None never matches)."""
    if a is None or b is None:
        return False
    return a is b or (type(a) is type(b) and a.extra_repr() == b.extra_repr())
