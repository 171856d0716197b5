"""Online triplet miners: (embeddings, labels) -> index tuple (anchor, positive, negative).

A valid triplet has ``labels[a] == labels[p]``, ``a != p`` and ``labels[a] != labels[n]``.
Miners run under ``no_grad``; :meth:`BaseMiner.mine` works on a precomputed (B, B)
distance matrix so a loss can reuse the matrix it already has.
"""
from __future__ import annotations

import torch
from torch import nn

from training.distances import BaseDistance, EuclideanDistance

IndexTuple = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def check_embeddings_and_labels(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Validate shapes; return labels on the embeddings' device."""
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be (B, D), got shape {tuple(embeddings.shape)}")
    if labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(f"labels must be (B,) with B={embeddings.shape[0]}, got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
    return labels.to(embeddings.device)


def label_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive_mask, negative_mask), both (B, B) bool; the diagonal is in neither."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


class BaseMiner(nn.Module):
    """``forward`` checks inputs, computes distances without grad, calls :meth:`mine`, checks output."""

    def __init__(self, distance: BaseDistance | None = None):
        super().__init__()
        # None: the loss using this miner lends its own distance; standalone use is Euclidean.
        self.distance = distance

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> IndexTuple:
        labels = check_embeddings_and_labels(embeddings, labels)
        distance = self.distance if self.distance is not None else EuclideanDistance()
        with torch.no_grad():
            dist = distance(embeddings.detach())
            a, p, n = self.mine(dist, labels)
        self.check_output(a, p, n, labels)
        return a, p, n

    def mine(self, dist: torch.Tensor, labels: torch.Tensor) -> IndexTuple:
        raise NotImplementedError

    @staticmethod
    def check_output(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, labels: torch.Tensor) -> None:
        if not (a.shape == p.shape == n.shape and a.ndim == 1):
            raise RuntimeError(f"miner returned mismatched index shapes {a.shape}, {p.shape}, {n.shape}")
        if a.numel() and not bool(((labels[a] == labels[p]) & (a != p) & (labels[a] != labels[n])).all()):
            raise RuntimeError("miner returned an invalid triplet (label or identity rule broken)")


class BatchAllMiner(BaseMiner):
    """Every valid triplet in the batch; with ``filter_easy`` only those the margin does not satisfy.

    ``filter_easy=True`` keeps triplets with ``d(a,p) - d(a,n) + margin > 0`` (hinge loss
    still positive, i.e. "semi-hard" plus "hard" in pytorch-metric-learning's terms).

    The returned tuple holds one entry per triplet, up to ~B^3/2 of them; it is built in
    anchor chunks of ``chunk_size`` so the temporary (chunk, B, B) mask stays small, but the
    output itself is O(triplets). :class:`~training.losses.TripletMarginLoss` does not use
    this tuple for batch-all: it reduces the (B, B) distance matrix directly in O(B^2).
    """

    def __init__(self, distance: BaseDistance | None = None, margin: float = 0.2,
                 filter_easy: bool = False, chunk_size: int = 16):
        super().__init__(distance)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.margin = float(margin)
        self.filter_easy = bool(filter_easy)
        self.chunk_size = chunk_size

    def extra_repr(self) -> str:
        return f"margin={self.margin}, filter_easy={self.filter_easy}"

    def mine(self, dist: torch.Tensor, labels: torch.Tensor) -> IndexTuple:
        pos, neg = label_masks(labels)
        parts = []
        for start in range(0, labels.shape[0], self.chunk_size):
            rows = slice(start, start + self.chunk_size)
            mask = pos[rows, :, None] & neg[rows, None, :]  # (c, B_p, B_n)
            if self.filter_easy:
                d = dist[rows]
                mask &= (d[:, :, None] - d[:, None, :] + self.margin) > 0
            idx = mask.nonzero()  # (k, 3) in (anchor - start, positive, negative) order
            idx[:, 0] += start
            parts.append(idx)
        idx = torch.cat(parts) if parts else torch.zeros(0, 3, dtype=torch.long, device=dist.device)
        return idx[:, 0], idx[:, 1], idx[:, 2]


class BatchHardMiner(BaseMiner):
    """Per anchor, its farthest positive and closest negative (Hermans et al., 2017).

    Anchors without any positive or any negative in the batch are dropped. O(B^2).
    """

    def mine(self, dist: torch.Tensor, labels: torch.Tensor) -> IndexTuple:
        pos, neg = label_masks(labels)
        inf = torch.finfo(dist.dtype).max
        hardest_pos = torch.where(pos, dist, -inf).argmax(dim=1)  # (B,)
        hardest_neg = torch.where(neg, dist, inf).argmin(dim=1)  # (B,)
        anchors = (pos.any(dim=1) & neg.any(dim=1)).nonzero().flatten()
        return anchors, hardest_pos[anchors], hardest_neg[anchors]
