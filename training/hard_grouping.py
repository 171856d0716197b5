"""Hard-batch grouping: regroup a pre-batch so each batch holds pairs that are hard to separate.

Used after ``--start_mining_hard``: embed a pre-batch of M = multiplier * batch_size samples
without grad, call :func:`group_hard_batches`, train on the returned batches, and feed
each step's ``TripletMarginLoss.last_stats["fraction_active"]`` to
:class:`HardMiningScheduler`, which lowers the threshold when training gets too easy.

Hardness of a pair, from the (M, M) distance matrix (scale free, so it works for
unnormalised embeddings whose scale drifts during training):

* different classes: ``1 - d / max_negative_distance`` (close negatives are hard);
* same class: ``d / max_positive_distance`` (far positives are hard).

A pair is *eligible* when its hardness >= ``threshold``. Lower thresholds make more pairs
eligible, so more of every batch is built from hard pairs; ``threshold > 1`` gives
random batches.

Greedy grouping, one batch at a time: start from the free sample with the most eligible
free partners (ties broken by a seeded random order), then repeatedly add the free sample
with the highest hardness to ANY current member while that is >= threshold (a far
positive of a member, or a close sample of another class); when no eligible candidate is
left, start again from the next seed. Each step is a vector operation over the (M, M)
matrix rows, O(M) work, so a whole pre-batch costs O(M^2) like the distance matrix.
"""
from __future__ import annotations

from collections import deque

import numpy as np
import torch

from training.distances import BaseDistance, EuclideanDistance
from training.miners import check_embeddings_and_labels, label_masks


def hardness_matrix(dist: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(M, M) hardness in [0, 1] as defined in the module docstring; -inf on the diagonal."""
    pos, neg = label_masks(labels)
    pos_max = torch.where(pos, dist, 0.0).max()
    neg_max = torch.where(neg, dist, 0.0).max()
    tiny = torch.finfo(dist.dtype).tiny
    hard = torch.where(pos, dist / pos_max.clamp_min(tiny), 1.0 - dist / neg_max.clamp_min(tiny))
    return torch.where(pos | neg, hard, -torch.inf)


@torch.no_grad()
def group_hard_batches(embeddings: torch.Tensor, labels: torch.Tensor | np.ndarray, batch_size: int,
                       threshold: float, distance: BaseDistance | None = None,
                       rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Split indices 0..M-1 of a pre-batch into hard batches.

    Returns ``ceil(M / batch_size)`` int64 arrays that partition ``range(M)``; all have
    ``batch_size`` entries except possibly the last (``M % batch_size``).
    """
    labels = check_embeddings_and_labels(embeddings, torch.as_tensor(labels))
    m = embeddings.shape[0]
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 for triplets, got {batch_size}")
    if m == 0:
        return []
    rng = rng if rng is not None else np.random.default_rng(0)
    dist = (distance if distance is not None else EuclideanDistance())(embeddings.detach().float())
    hard = hardness_matrix(dist, labels).cpu().numpy()  # (M, M)
    eligible = hard >= threshold  # (M, M) bool, symmetric, False on the diagonal

    # Random tie-break: higher key wins among seeds with equal eligible-partner counts.
    tie_key = np.empty(m, dtype=np.int64)
    tie_key[rng.permutation(m)] = np.arange(m)[::-1]
    free = np.ones(m, dtype=bool)
    partners = eligible.sum(axis=1).astype(np.int64)  # eligible FREE partners per sample
    batches = []
    for start in range(0, m, batch_size):
        size = min(batch_size, m - start)
        members = np.empty(size, dtype=np.int64)
        best = np.full(m, -np.inf)  # max hardness to any member of the current batch
        for slot in range(size):
            candidates = np.where(free, best, -np.inf)
            j = int(candidates.argmax())
            if not free[j] or candidates[j] < threshold:  # nothing eligible joins: new seed
                j = int(np.where(free, partners * m + tie_key, -1).argmax())
            members[slot] = j
            free[j] = False
            partners -= eligible[:, j]
            np.maximum(best, hard[j], out=best)
        batches.append(members)
    return batches


class HardMiningScheduler:
    """Lowers the grouping threshold when too few triplets stay active.

    Rule, checked at every :meth:`step` with the last batch's ``fraction_active``: if the
    mean over the last ``window`` steps is below ``min_active_fraction`` and at least
    ``cooldown`` steps passed since the last change, ``threshold = max(min_threshold,
    threshold * factor)``. A lower threshold makes more pairs eligible for hard grouping
    (see the module docstring), i.e. harder batches. The threshold never rises.
    """

    def __init__(self, threshold: float, factor: float, min_active_fraction: float, *,
                 min_threshold: float = 0.2, window: int = 5, cooldown: int = 10):
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        if not 0.0 <= min_active_fraction <= 1.0:
            raise ValueError(f"min_active_fraction must be in [0, 1], got {min_active_fraction}")
        if window < 1 or cooldown < 0:
            raise ValueError(f"window must be >= 1 and cooldown >= 0, got {window}, {cooldown}")
        self.threshold = float(threshold)
        self.factor = float(factor)
        self.min_active_fraction = float(min_active_fraction)
        self.min_threshold = float(min_threshold)
        self.window = int(window)
        self.cooldown = int(cooldown)
        self._recent: deque[float] = deque(maxlen=self.window)
        self._steps = 0
        self._last_change = -self.cooldown  # allow a change at the first step

    def step(self, fraction_active: float) -> float:
        """Record one batch's active fraction; return the (possibly lowered) threshold."""
        self._steps += 1
        self._recent.append(float(fraction_active))
        too_easy = sum(self._recent) / len(self._recent) < self.min_active_fraction
        if too_easy and self._steps - self._last_change >= self.cooldown and self.threshold > self.min_threshold:
            self.threshold = max(self.min_threshold, self.threshold * self.factor)
            self._last_change = self._steps
        return self.threshold

    def state_dict(self) -> dict:
        return {"threshold": self.threshold, "recent": list(self._recent), "steps": self._steps,
                "last_change": self._last_change}

    def load_state_dict(self, state: dict) -> None:
        self.threshold = float(state["threshold"])
        self._recent = deque((float(v) for v in state["recent"]), maxlen=self.window)
        self._steps = int(state["steps"])
        self._last_change = int(state["last_change"])
