"""Ranking a query's glosses by their nearest sample, and counting hits: the one recognition rule.

Training's validation accuracy, every protocol of ``evaluate.py``, a gallery's answers,
the signer-fold benchmark and the int8 drift report all go through this module, so a
figure with the same name means the same thing wherever it is printed:

1. A gloss's distance to a query is that of its nearest *allowed* gallery sample. Which
   samples are allowed is a boolean exclusion mask (the query itself, its video, its
   signer), built by :func:`evaluation.knn.exclusion_mask`.
2. Glosses are ranked by that distance, nearest first, so the top five guesses are five
   different signs. Equal distances go to the lower gloss id, so a ranking depends on
   neither the order the gallery was stored in nor the order an index returned it.
   A gloss with no allowed sample is no candidate (``-1``, distance ``inf``).
3. A query is *answerable* (eligible) when its own gloss is a candidate: a gloss only
   one person signs has no cross-signer answer, and a same-set query whose gloss has a
   single sample has none once it leaves itself out. ``top-k`` is the share of answerable
   queries whose gloss is among the first ``k``; ``top-k_all`` also counts every
   unanswerable query as a miss.

:func:`order_glosses` is rule 2 on any set of (gloss, distance) candidates. The matrix
path (:func:`nearest_per_gloss` then :func:`rank_glosses`) feeds it every gloss; a gallery
search (:func:`evaluation.gallery.distinct_top_k`) feeds it the glosses met in a
retrieved neighbour list, which on a full-length exact list is the same ranking.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

KS = (1, 5)


def nearest_per_gloss(distances: torch.Tensor, gallery_labels, num_glosses: int,
                      excluded: torch.Tensor | None = None) -> torch.Tensor:
    """``(Q, C)`` distance from each query to the nearest allowed sample of each gloss (inf if none).

    ``distances`` is ``(Q, G)``; ``excluded`` is ``(Q, G)``, True where the query may not
    use that gallery sample.
    """
    distances = torch.as_tensor(distances, dtype=torch.float32)
    if excluded is not None:
        distances = distances.masked_fill(excluded, float("inf"))
    labels = torch.as_tensor(np.asarray(gallery_labels), dtype=torch.long).reshape(-1)
    out = torch.full((distances.shape[0], num_glosses), float("inf"))
    if labels.numel() == 0:
        return out
    return out.scatter_reduce(1, labels[None, :].expand_as(distances), distances, reduce="amin")


def order_glosses(distances: torch.Tensor, k: int, glosses: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best candidates per row: ``(gloss ids (Q, k), distances (Q, k))``, nearest first.

    Candidates are the columns of ``distances``; their gloss ids are ``glosses`` (same
    shape, ``-1`` = no candidate) or, when ``None``, the column numbers. Each gloss must
    appear at most once per row. Ties go to the lower gloss id; rows with fewer than ``k``
    finite candidates are padded with ``-1`` / ``inf``.
    """
    distances = torch.as_tensor(distances, dtype=torch.float32)
    q, m = distances.shape
    if glosses is None:
        glosses = torch.arange(m).expand(q, m)                       # already in gloss-id order
    else:
        glosses = torch.as_tensor(glosses, dtype=torch.long)
        distances = distances.masked_fill(glosses < 0, float("inf"))
        by_gloss = glosses.argsort(dim=1, stable=True)               # equal distances: lower id first
        glosses, distances = glosses.gather(1, by_gloss), distances.gather(1, by_gloss)
    keep = min(k, m)
    order = distances.argsort(dim=1, stable=True)[:, :keep]
    ids, values = glosses.gather(1, order), distances.gather(1, order)
    found = torch.isfinite(values)
    ids = torch.where(found, ids, torch.full_like(ids, -1))
    values = torch.where(found, values, torch.full_like(values, float("inf")))
    if keep < k:
        ids = torch.cat([ids, torch.full((q, k - keep), -1, dtype=ids.dtype)], 1)
        values = torch.cat([values, torch.full((q, k - keep), float("inf"))], 1)
    return ids, values


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


@dataclass
class Ranking:
    """The ranked glosses of a batch of queries and whether each query could be answered."""

    predictions: np.ndarray   # (Q, k) gloss ids, nearest first; -1 = no candidate
    distances: np.ndarray     # (Q, k) the gloss's nearest allowed sample; inf where -1
    labels: np.ndarray        # (Q,) the true gloss of each query
    eligible: np.ndarray      # (Q,) the true gloss had an allowed gallery sample

    @classmethod
    def concatenate(cls, parts: list[Ranking]) -> Ranking:
        """The rankings of consecutive query blocks as one (each query is ranked on its own)."""
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in
                     ("predictions", "distances", "labels", "eligible")))

    def hits(self, k: int) -> np.ndarray:
        """``(Q,)`` True where the query's gloss is among its ``k`` first guesses."""
        return (self.predictions[:, :k] == self.labels[:, None]).any(1)

    def accuracy(self, ks: Iterable[int] = KS, prefix: str = "knn") -> dict[str, float]:
        """``{prefix}_top{k}`` over answerable queries and ``{prefix}_top{k}_all`` over all (nan if none)."""
        out = {}
        for k in ks:
            hit = self.hits(k)
            out[f"{prefix}_top{k}"] = _mean(hit[self.eligible])
            out[f"{prefix}_top{k}_all"] = _mean(hit)
        return out


def rank_glosses(per_gloss: torch.Tensor, query_labels, k: int = max(KS)) -> Ranking:
    """Rank the glosses of ``(Q, C)`` per-gloss distances (nearest sample, or centroid) for each query."""
    per_gloss = torch.as_tensor(per_gloss, dtype=torch.float32)
    labels = np.asarray(query_labels, dtype=np.int64).reshape(-1)
    ids, values = order_glosses(per_gloss, k)
    known = (labels >= 0) & (labels < per_gloss.shape[1])
    own = per_gloss[torch.arange(len(labels)), torch.as_tensor(np.where(known, labels, 0))]
    eligible = known & torch.isfinite(own).numpy()
    return Ranking(ids.numpy(), values.numpy(), labels, eligible)


def rank_by_nearest(distances: torch.Tensor, gallery_labels, query_labels, num_glosses: int,
                    excluded: torch.Tensor | None = None, k: int = max(KS)) -> Ranking:
    """kNN recognition of ``(Q, G)`` distances: glosses by nearest allowed sample (rules 1-3 above)."""
    return rank_glosses(nearest_per_gloss(distances, gallery_labels, num_glosses, excluded), query_labels, k)
