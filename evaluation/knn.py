"""Distances between embeddings and the measures built on them beside kNN accuracy.

Distance matrices, the masks of which gallery samples a query may use (one boolean
mask expresses leave-self-out, same-video and cross-signer protocols alike), class
centroids, MAP@R and silhouette. Ranking glosses by their nearest sample and counting
hits is :mod:`evaluation.ranking`, the one place that rule lives.
"""
from __future__ import annotations

import numpy as np
import torch


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
    """True where gallery sample j shares query i's group (a video id, a signer id)."""
    q = np.asarray(query_groups)
    g = np.asarray(gallery_groups)
    _, codes = np.unique(np.concatenate([q, g]), return_inverse=True)
    qc, gc = torch.from_numpy(codes[: len(q)]), torch.from_numpy(codes[len(q):])
    return qc[:, None] == gc[None, :]


def silhouette(embeddings: np.ndarray, labels, metric: str = "euclidean", max_samples: int = 5000, seed: int = 0) -> float:
    """Silhouette score (sklearn, vectorised); nan when fewer than 2 classes."""
    from sklearn.metrics import silhouette_score
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2 or len(labels) <= len(np.unique(labels)):
        return float("nan")
    sample = None if len(labels) <= max_samples else max_samples
    return float(silhouette_score(embeddings, labels, metric=metric, sample_size=sample, random_state=seed))


def masked_centroid_distances(query_emb, gallery_emb, gallery_labels, num_classes: int,
                              excluded: torch.Tensor | None = None, metric: str = "euclidean") -> torch.Tensor:
    """``(Q, C)`` distance to each class centroid built, per query, from its allowed samples only.

    Leave-self-out and cross-signer centroids differ from query to query; one small matrix
    product per class gives all of them (inf where a class has no allowed sample).
    """
    q = torch.as_tensor(np.asarray(query_emb), dtype=torch.float32)
    g = torch.as_tensor(np.asarray(gallery_emb), dtype=torch.float32)
    labels = np.asarray(gallery_labels)
    if metric == "cosine":
        q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-12)
    out = torch.full((len(q), num_classes), float("inf"))
    for c in np.unique(labels):
        members = torch.from_numpy(np.flatnonzero(labels == c))
        allowed = (~excluded[:, members]).float() if excluded is not None else torch.ones(len(q), len(members))
        counts = allowed.sum(1)                                       # (Q,)
        centroids = (allowed @ g[members]) / counts.clamp_min(1)[:, None]  # (Q, D)
        if metric == "cosine":
            centroids = centroids / centroids.norm(dim=1, keepdim=True).clamp_min(1e-12)
            d = 1 - (q * centroids).sum(1)
        else:
            d = (q - centroids).pow(2).sum(1).sqrt()
        out[:, int(c)] = torch.where(counts > 0, d, torch.full_like(d, float("inf")))
    return out


def map_at_r(distances: torch.Tensor, query_labels, gallery_labels, excluded: torch.Tensor | None = None) -> float:
    """Mean average precision at R (Musgrave et al. 2020), R = the query's allowed same-gloss samples.

    Queries with no allowed same-gloss sample are left out; nan when none remains.
    """
    q_labels = torch.as_tensor(np.asarray(query_labels), dtype=torch.long)
    g_labels = torch.as_tensor(np.asarray(gallery_labels), dtype=torch.long)
    relevant = q_labels[:, None] == g_labels[None, :]                  # (Q, G)
    if excluded is not None:
        relevant &= ~excluded
        distances = distances.masked_fill(excluded, float("inf"))
    r = relevant.sum(1)
    keep = r > 0
    if not keep.any():
        return float("nan")
    order = distances[keep].argsort(dim=1, stable=True)
    hits = relevant[keep].gather(1, order).float()                     # (Q', G), nearest first
    ranks = torch.arange(1, hits.shape[1] + 1, dtype=torch.float32)
    precision = hits.cumsum(1) / ranks
    within = ranks[None, :] <= r[keep][:, None]
    return float(((precision * hits * within).sum(1) / r[keep]).mean())
