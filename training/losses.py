"""Metric-learning losses: triplet margin loss with batch-all or batch-hard online mining
(the published choice), CosFace over learned gloss directions, supervised contrastive.

Which one to use is an experiment's choice (``--loss``); on real signers the measured
answer is in ``docs/accuracy.md``. The notes below are about the triplet loss.

Own code rather than pytorch-metric-learning (PML), on purpose:

* no extra dependency for ~200 tested lines;
* batch-all in O(B^2) memory: PML (and the published SPOTER-embeddings loss) build a
  (B, B, B) tensor or one index per triplet, ~B^3/2 entries (8M at B=256) that autograd
  keeps alive until backward. Here the hinge sum over negatives is computed per
  (anchor, positive) pair from sorted negative distances and prefix sums (below);
* exact statistics for logging and for the hard-mining scheduler (``last_stats``).

Batch-all without a B^3 tensor: for anchor a let ``s_1 <= s_2 <= ...`` be its distances to
the negatives and ``S_k`` their prefix sums. For a positive p with ``t = d(a,p) + margin``
the hinge terms ``relu(t - s_i)`` are non-zero exactly for the ``k = #{i: s_i < t}``
smallest negatives (``searchsorted``), so ``sum_i relu(t - s_i) = k*t - S_k``. That needs a
(B, B) sort, a cumsum and a gather: O(B^2 log B) time, O(B^2) memory, and autograd gives the
exact hinge gradient (``+k`` for d(a,p), ``-1`` for each active d(a,n)). The prefix sums are
taken in float64 because ``k*t - S_k`` subtracts two large numbers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.distances import BaseDistance, EuclideanDistance, same_distance
from training.miners import BaseMiner, BatchAllMiner, check_embeddings_and_labels, label_masks


def batch_all_triplet_sums(dist: torch.Tensor, labels: torch.Tensor, margin: float,
                           keep_margin: float | None = None) -> dict[str, torch.Tensor]:
    """Hinge-loss sum and triplet counts over all valid triplets of a (B, B) distance matrix.

    Returns tensors ``loss_sum`` (differentiable; over kept triplets), ``active``
    (``d_ap - d_an + margin > 0``), ``kept`` (``d_ap - d_an + keep_margin > 0``; equals
    ``valid`` when ``keep_margin`` is None) and ``valid``.
    """
    pos, neg = label_masks(labels)  # (B, B) each
    b = dist.shape[0]
    d64 = dist.double()
    n_neg = neg.sum(dim=1)  # (B,)
    # Row a: distances to a's negatives ascending, non-negatives pushed to the end.
    sorted_neg, _ = torch.where(neg, d64, torch.inf).sort(dim=1)  # (B, B)
    in_range = torch.arange(b, device=dist.device)[None, :] < n_neg[:, None]
    prefix = F.pad(torch.where(in_range, sorted_neg, 0.0).cumsum(dim=1), (1, 0))  # (B, B+1), S_0 = 0
    search_rows = sorted_neg.detach().contiguous()

    def count_below(m: float) -> torch.Tensor:  # k[a, p] = #{negatives n of a: d(a,n) < d(a,p) + m}
        thresholds = (d64.detach() + m).contiguous()
        return torch.searchsorted(search_rows, thresholds, right=False)  # (B, B) int64

    k_active = count_below(margin)
    zero = torch.zeros((), dtype=torch.long, device=dist.device)
    valid = (pos.sum(dim=1) * n_neg).sum()
    active = torch.where(pos, k_active, zero).sum()
    if keep_margin is None:
        k_loss, kept = k_active, valid
    elif keep_margin == margin:
        k_loss, kept = k_active, active
    else:
        k_keep = count_below(keep_margin)
        kept = torch.where(pos, k_keep, zero).sum()
        # Only kept triplets enter the sum; both conditions hold below the smaller margin.
        k_loss = k_keep if keep_margin < margin else k_active
    per_pair = k_loss * (d64 + margin) - prefix.gather(1, k_loss)  # (B, B): sum over n of the hinge
    loss_sum = torch.where(pos, per_pair, 0.0).sum().to(dist.dtype)
    return {"loss_sum": loss_sum, "active": active, "kept": kept, "valid": valid}


class TripletMarginLoss(nn.Module):
    """``relu(d(a,p) - d(a,n) + margin)`` averaged over mined triplets.

    Parts by keyword: ``distance`` (default :class:`EuclideanDistance`) and ``miner``
    (default ``BatchAllMiner(margin=margin, filter_easy=True)``: mean over the triplets with
    positive loss, as the published SPOTER-embeddings training did).

    * :class:`BatchAllMiner`: reduced in O(B^2) memory (module docstring). With
      ``filter_easy`` the mean is over triplets with ``d_ap - d_an + miner.margin > 0``
      (= the active ones when the margins agree), otherwise over all valid triplets.
    * any other miner (e.g. :class:`BatchHardMiner`): mean over its (a, p, n) tuples;
      ``smooth=True`` replaces the hinge with softplus (Hermans et al. use it with margin 0).

    After each call ``last_stats`` holds Python numbers: ``active_triplets`` (hinge > 0),
    ``valid_triplets`` (all valid triplets for batch-all, mined tuples otherwise) and
    ``fraction_active``. A batch without valid triplets gives a zero loss that still
    backpropagates (zero gradients).
    """

    def __init__(self, margin: float = 0.2, distance: BaseDistance | None = None,
                 miner: BaseMiner | None = None, smooth: bool = False):
        super().__init__()
        self.margin = float(margin)
        self.distance = distance if distance is not None else EuclideanDistance()
        self.miner = miner if miner is not None else BatchAllMiner(margin=self.margin, filter_easy=True)
        self.smooth = bool(smooth)
        if isinstance(self.miner, BatchAllMiner):
            if self.smooth:
                raise ValueError("smooth=True (softplus) is only supported with tuple miners such as "
                                 "BatchHardMiner, not BatchAllMiner")
            if self.miner.distance is not None and not same_distance(self.miner.distance, self.distance):
                raise ValueError("BatchAllMiner inside TripletMarginLoss must use the loss's distance; "
                                 "leave the miner's distance=None")
        self.last_stats: dict[str, int | float] = {}

    def extra_repr(self) -> str:
        return f"margin={self.margin}, smooth={self.smooth}"

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, D) embeddings, (B,) integer labels -> scalar loss."""
        labels = check_embeddings_and_labels(embeddings, labels)
        dist = self.distance(embeddings)  # (B, B), differentiable
        if isinstance(self.miner, BatchAllMiner):
            return self._batch_all(dist, labels)
        return self._tuples(embeddings, dist, labels)

    def _batch_all(self, dist: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        keep = self.miner.margin if self.miner.filter_easy else None
        sums = batch_all_triplet_sums(dist, labels, self.margin, keep_margin=keep)
        active, kept, valid = torch.stack([sums["active"], sums["kept"], sums["valid"]]).tolist()
        self._record(active, valid)
        if kept == 0:
            return dist.sum() * 0.0
        return sums["loss_sum"] / kept

    def _tuples(self, embeddings: torch.Tensor, dist: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        miner_dist = self.miner.distance
        with torch.no_grad():
            if miner_dist is None or same_distance(miner_dist, self.distance):
                mining_matrix = dist.detach()
            else:
                mining_matrix = miner_dist(embeddings.detach())
            a, p, n = self.miner.mine(mining_matrix, labels)
        self.miner.check_output(a, p, n, labels)
        if a.numel() == 0:
            self._record(0, 0)
            return dist.sum() * 0.0
        values = dist[a, p] - dist[a, n] + self.margin  # (num_tuples,)
        self._record(int((values > 0).sum()), a.numel())
        return (F.softplus(values) if self.smooth else F.relu(values)).mean()

    def _record(self, active: int, valid: int) -> None:
        self.last_stats = {
            "active_triplets": int(active),
            "valid_triplets": int(valid),
            "fraction_active": float(active) / valid if valid else 0.0,
        }


class CosFaceLoss(nn.Module):
    """Softmax over learned class directions with an additive cosine margin (CosFace / NormFace).

    Each training gloss owns ``subcenters`` learned unit vectors ("proxies"); a sample's
    similarity to a gloss is its cosine to the nearest of them, and the loss is the cross
    entropy of ``scale * (cos - margin on the true gloss)``. Why it suits small real sets
    better than batch-all triplets: every sample is compared with *every* gloss at every
    step (not only with the few in its batch), the big glosses cannot dominate through the
    number of triplets they form, and the margin keeps pushing after a batch's triplets
    are satisfied. Sub-centres (sub-center ArcFace's idea) let a gloss signed in several
    distinct ways keep several directions. The proxies belong to the loss, not to the
    model: embeddings and exported graphs are unchanged, only ``distance`` must be cosine.
    """

    def __init__(self, num_classes: int, embedding_dim: int, scale: float = 16.0, margin: float = 0.2,
                 subcenters: int = 1):
        super().__init__()
        if num_classes < 2 or embedding_dim < 1 or subcenters < 1:
            raise ValueError(f"CosFaceLoss needs >= 2 classes, embedding_dim >= 1 and subcenters >= 1 "
                             f"(got {num_classes}, {embedding_dim}, {subcenters})")
        if not scale > 0 or not margin >= 0:
            raise ValueError(f"CosFaceLoss needs scale > 0 and margin >= 0 (got {scale}, {margin})")
        self.scale, self.margin, self.subcenters = float(scale), float(margin), int(subcenters)
        self.proxies = nn.Parameter(torch.randn(num_classes * subcenters, embedding_dim) / embedding_dim ** 0.5)
        self.last_stats: dict[str, int | float] = {}

    def extra_repr(self) -> str:
        return f"classes={self.proxies.shape[0] // self.subcenters}, scale={self.scale}, margin={self.margin}, " \
               f"subcenters={self.subcenters}"

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, D) embeddings, (B,) integer labels in [0, num_classes) -> scalar loss."""
        labels = check_embeddings_and_labels(embeddings, labels)
        classes = self.proxies.shape[0] // self.subcenters
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= classes):
            raise ValueError(f"CosFaceLoss: labels must lie in [0, {classes}), got {int(labels.min())}..{int(labels.max())}")
        cos = F.normalize(embeddings.float(), dim=1) @ F.normalize(self.proxies.float(), dim=1).T
        cos = cos.view(len(labels), classes, self.subcenters).amax(dim=2)           # (B, C)
        logits = self.scale * (cos - self.margin * F.one_hot(labels, classes))
        with torch.no_grad():
            correct = int((logits.argmax(dim=1) == labels).sum())
        self.last_stats = {"train_accuracy": correct / max(len(labels), 1)}
        return F.cross_entropy(logits, labels)


class SupConLoss(nn.Module):
    """Supervised contrastive loss (Khosla et al. 2020) on cosine similarities of a batch.

    For each anchor, every same-gloss sample of the batch is a positive and the softmax
    runs over all other samples at ``temperature``; anchors without a positive are
    skipped. Use it with the P×K sampler so every anchor has positives.
    """

    def __init__(self, temperature: float = 0.1):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"SupConLoss needs temperature > 0 (got {temperature})")
        self.temperature = float(temperature)
        self.last_stats: dict[str, int | float] = {}

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = check_embeddings_and_labels(embeddings, labels)
        unit = F.normalize(embeddings.float(), dim=1)
        logits = unit @ unit.T / self.temperature
        self_mask = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        logits = logits.masked_fill(self_mask, float("-inf"))
        positives, _ = label_masks(labels)
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        counts = positives.sum(dim=1)
        anchors = counts > 0
        self.last_stats = {"anchors": int(anchors.sum())}
        if not bool(anchors.any()):
            return embeddings.sum() * 0.0
        per_anchor = log_prob.masked_fill(~positives, 0.0).sum(dim=1)[anchors] / counts[anchors]
        return -per_anchor.mean()
