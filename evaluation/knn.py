"""Distances between embeddings and the measures built on them beside kNN accuracy.

Distances, the masks of which gallery samples a query may use (one boolean mask
expresses leave-self-out, same-video and cross-signer protocols alike), class centroids,
MAP@R and silhouette. Each works on any block of queries against the whole gallery, so
:mod:`evaluation.report` evaluates ``(B, G)`` blocks and never holds ``(Q, G)``. Ranking
glosses by their nearest sample and counting hits is :mod:`evaluation.ranking`, the one
place that rule lives.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from evaluation.exclusions import Exclusions


def pairwise_distances(queries: np.ndarray, gallery: np.ndarray, metric: str = "euclidean") -> torch.Tensor:
    """``(Q, G)`` distances, computed with one matrix product."""
    q, g = torch.as_tensor(queries, dtype=torch.float32), torch.as_tensor(gallery, dtype=torch.float32)
    if metric == "cosine":
        q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-12)
        g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return 1 - q @ g.T
    squared = (q * q).sum(1, keepdim=True) - 2 * q @ g.T + (g * g).sum(1)[None, :]
    return squared.clamp_min(0).sqrt()


def exclusion_mask(query_groups, gallery_groups) -> torch.Tensor:
    """True where gallery sample j shares query i's group (a video id, a signer id): a full ``(Q, G)`` mask.

    For small sets (one held-out fold, the int8 drift check); evaluation builds these per
    query block from the ids (:class:`evaluation.exclusions.Exclusions`).
    """
    return Exclusions.of((query_groups, gallery_groups)).dense()


def silhouette(embeddings: np.ndarray, labels, metric: str = "euclidean", max_samples: int = 5000, seed: int = 0) -> float:
    """Silhouette score (sklearn, vectorised); nan when fewer than 2 classes."""
    from sklearn.metrics import silhouette_score
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2 or len(labels) <= len(np.unique(labels)):
        return float("nan")
    sample = None if len(labels) <= max_samples else max_samples
    return float(silhouette_score(embeddings, labels, metric=metric, sample_size=sample, random_state=seed))


@dataclass(frozen=True)
class ClassSums:
    """Per-class sums and counts of the gallery embeddings (float64), computed once per gallery.

    A query's centroid of class c with some members excluded is ``(sum_c - excluded sum) /
    (n_c - excluded count)``: only the excluded members (the query itself, its video, its
    signer) need touching per query, never a ``(Q, n_c)`` mask per class.
    """

    embeddings: torch.Tensor   # (G, D) float64
    labels: torch.Tensor       # (G,) long
    sums: torch.Tensor         # (C, D) float64
    counts: torch.Tensor       # (C,) float64

    @classmethod
    def of(cls, gallery_emb, gallery_labels, num_classes: int) -> ClassSums:
        g = torch.as_tensor(np.asarray(gallery_emb, np.float64))
        labels = torch.as_tensor(np.asarray(gallery_labels), dtype=torch.long).reshape(-1)
        if g.ndim != 2 or len(g) != len(labels):
            raise ValueError(f"gallery embeddings must be (G, D) with one label each, got {tuple(g.shape)} "
                             f"for {len(labels)} labels")
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"gallery labels must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}")
        sums = torch.zeros(num_classes, g.shape[1], dtype=torch.float64).index_add_(0, labels, g)
        counts = torch.bincount(labels, minlength=num_classes).to(torch.float64)
        return cls(g, labels, sums, counts)


def _centroid_distance(q: torch.Tensor, centroids: torch.Tensor, metric: str) -> torch.Tensor:
    """Row-wise distance between matching rows of ``q`` (cosine: already unit) and ``centroids``."""
    if metric == "cosine":
        return 1 - (q * centroids).sum(1) / centroids.norm(dim=1).clamp_min(1e-12)
    return (q - centroids).pow(2).sum(1).sqrt()


def masked_centroid_distances(query_emb, gallery_emb, gallery_labels, num_classes: int,
                              excluded: torch.Tensor | None = None, metric: str = "euclidean",
                              sums: ClassSums | None = None) -> torch.Tensor:
    """``(Q, C)`` distance to each class centroid built, per query, from its allowed samples only.

    Leave-self-out and cross-signer centroids differ from query to query. Every (query,
    class) pair without an excluded member uses the class's full centroid (one matrix
    product); the pairs with excluded members get ``sum - excluded sum`` from one sparse
    product over the excluded (query, sample) pairs. inf where a class has no allowed sample.
    Computed in float64, so subtracting sums loses nothing against summing the allowed members.
    ``sums`` reuses the per-class sums of ``gallery_emb`` across query blocks.
    """
    sums = sums if sums is not None else ClassSums.of(gallery_emb, gallery_labels, num_classes)
    q = torch.as_tensor(np.asarray(query_emb, np.float64))
    if metric == "cosine":
        q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-12)
    present = sums.counts > 0
    means = sums.sums / sums.counts.clamp_min(1)[:, None]                    # (C, D)
    if metric == "cosine":
        out = 1 - q @ (means / means.norm(dim=1, keepdim=True).clamp_min(1e-12)).T
    else:
        out = ((q * q).sum(1, keepdim=True) - 2 * q @ means.T + (means * means).sum(1)[None, :]).clamp_min(0).sqrt()
    out = out.masked_fill(~present[None, :], float("inf"))
    if excluded is not None and bool(excluded.any()):
        rows, members = excluded.nonzero(as_tuple=True)                        # excluded (query, sample) pairs
        pair_class, pair_of = torch.unique(rows * num_classes + sums.labels[members], return_inverse=True)
        picked = torch.sparse_coo_tensor(torch.stack([pair_of, members]), torch.ones(len(rows), dtype=torch.float64),
                                         (len(pair_class), len(sums.labels)), check_invariants=False)
        excluded_sums = torch.sparse.mm(picked, sums.embeddings)                 # (U, D)
        excluded_counts = torch.bincount(pair_of, minlength=len(pair_class)).to(torch.float64)
        query, cls = pair_class // num_classes, pair_class % num_classes
        left = sums.counts[cls] - excluded_counts
        centroids = (sums.sums[cls] - excluded_sums) / left.clamp_min(1)[:, None]
        d = _centroid_distance(q[query], centroids, metric)
        out[query, cls] = torch.where(left > 0, d, torch.full_like(d, float("inf")))
    return out.to(torch.float32)


def average_precision_at_r(distances: torch.Tensor, query_labels, gallery_labels,
                           excluded: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query: average precision at R (float32) and whether it has any allowed same-gloss sample.

    R is the query's number of allowed same-gloss samples; only the first ``max R`` ranks of
    the sorted row can hold a counted hit, so the work past the argsort is ``(Q, max R)``.
    """
    q_labels = torch.as_tensor(np.asarray(query_labels), dtype=torch.long).reshape(-1)
    g_labels = torch.as_tensor(np.asarray(gallery_labels), dtype=torch.long).reshape(-1)
    relevant = q_labels[:, None] == g_labels[None, :]                  # (Q, G)
    if excluded is not None:
        relevant &= ~excluded
        distances = distances.masked_fill(excluded, float("inf"))
    r = relevant.sum(1)
    keep = r > 0
    if not keep.any():
        return torch.zeros(0), keep
    r = r[keep]
    depth = int(r.max())
    order = distances[keep].argsort(dim=1, stable=True)[:, :depth]
    hits = relevant[keep].gather(1, order).float()                     # (Q', max R), nearest first
    ranks = torch.arange(1, depth + 1, dtype=torch.float32)
    precision = hits.cumsum(1) / ranks
    within = ranks[None, :] <= r[:, None]
    return (precision * hits * within).sum(1) / r, keep


def map_at_r(distances: torch.Tensor, query_labels, gallery_labels, excluded: torch.Tensor | None = None) -> float:
    """Mean average precision at R (Musgrave et al. 2020), R = the query's allowed same-gloss samples.

    Queries with no allowed same-gloss sample are left out; nan when none remains.
    """
    precision, _ = average_precision_at_r(distances, query_labels, gallery_labels, excluded)
    return float(precision.mean()) if len(precision) else float("nan")
