"""Which samples go together in each training batch of an epoch.

Three kinds, each deterministic given ``(config.seed, epoch)``: P×K batches (P glosses, K
clips each), random batches of distinct clips, and, from ``--start_mining_hard`` on, batches
regrouped hard from an embedded pre-batch (:func:`hard_batches`, the one kind that needs
the model, and therefore its own step of the training loop).
"""
from __future__ import annotations

import numpy as np
import torch

from augmentations.torch_data import PKSampler
from evaluation.embedding import embed_dataset
from training.config import TrainConfig
from training.hard_grouping import HardMiningScheduler, group_hard_batches


def mining_hard(config: TrainConfig, epoch: int) -> bool:
    """Whether ``epoch``'s batches are regrouped hard (from ``--start_mining_hard`` on)."""
    return 0 <= config.start_mining_hard <= epoch and not config.classification_model


def batches_per_epoch(config: TrainConfig, num_samples: int) -> int:
    return config.epoch_iters if config.epoch_iters > 0 else max(1, num_samples // config.batch_size)


def _epoch_rng(config: TrainConfig, epoch: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, epoch, 11])


LENGTH_WINDOW = 16  # random batches regrouped together by length: wide enough to sort, small enough to stay random
PAD_MULTIPLE = 16   # with --length_batching, batches are padded to a multiple of this many frames


def epoch_batches(config: TrainConfig, labels: np.ndarray, epoch: int,
                  lengths: np.ndarray | None = None) -> list[list[int]]:
    """Index batches for one epoch without the model: P×K (``--sampler pk``) or random.

    With ``--length_batching`` the batches are regrouped by the clips' ``lengths``: random
    batches by :func:`random_batches`, P×K batches by :func:`pk_batches_by_length`.
    """
    iters = batches_per_epoch(config, len(labels))
    if config.length_batching and lengths is None:
        raise ValueError("length batching needs the clips' lengths")
    if config.sampler == "pk":
        k = config.samples_per_class
        sampler = PKSampler(labels, p=max(2, config.batch_size // k), k=k, num_batches=iters, seed=config.seed)
        sampler.set_epoch(epoch)
        batches = list(sampler)
        if config.length_batching:
            rng = np.random.default_rng([config.seed, epoch, 13])  # its own stream: the P×K draws stay as they were
            batches = pk_batches_by_length(batches, labels, lengths, k, rng)
        return batches
    return random_batches(len(labels), config.batch_size, iters, _epoch_rng(config, epoch),
                          lengths=lengths if config.length_batching else None)


def random_batches(n: int, batch_size: int, iters: int, rng: np.random.Generator,
                   lengths: np.ndarray | None = None, window: int = LENGTH_WINDOW) -> list[list[int]]:
    """``iters`` batches of distinct samples, taken in turn from fresh permutations of the ``n`` samples.

    A batch never spans two permutations, so no sample appears twice in one batch (a repeat
    would be its own positive: a free, useless pair); the leftover tail of a permutation that
    cannot fill a batch is dropped. With ``lengths``, each run of ``window`` batches of a
    permutation is sorted by clip length, cut again into batches and shuffled: the epoch holds
    the same samples, each batch is still a set of distinct samples drawn at random from the
    window, but its clips have similar lengths, so little of it is padding.
    """
    size = min(batch_size, n)
    per_pass = max(1, n // size)
    batches: list[list[int]] = []
    while len(batches) < iters:
        order = rng.permutation(n)
        count = min(per_pass, iters - len(batches))
        if lengths is None:
            batches.extend(order[i * size:(i + 1) * size].tolist() for i in range(count))
            continue
        for start in range(0, count, window):
            chunk = order[start * size: min(start + window, count) * size]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            grouped = [chunk[i:i + size].tolist() for i in range(0, len(chunk), size)]
            batches.extend(grouped[i] for i in rng.permutation(len(grouped)))
    return batches


def pk_batches_by_length(batches: list[list[int]], labels: np.ndarray, lengths: np.ndarray, k: int,
                         rng: np.random.Generator, window: int = LENGTH_WINDOW) -> list[list[int]]:
    """P×K batches regrouped by length, each still P distinct glosses × K clips.

    A P×K batch is P gloss groups of K clips. Within each run of ``window`` batches the
    groups are sorted by their longest clip and cut into batches again; where a gloss then
    meets itself in a batch, one of its groups swaps places with a group of the nearest
    batch that can take it. The batches are then shuffled. The run keeps exactly the same
    groups (the same clips with the same gloss partners, repeats and their augmentation
    rounds included); only which groups share a batch changes, so similar lengths meet and
    little of a batch is padding. A run no swap can mend stays as it was drawn.

    The K clips of a group are left as drawn: they are each other's positives, and picking
    them by length would teach that a sign's positives share its speed. So the padding left
    is the spread within a group (on 30-120-frame clips, K = 4: a share of ~0.27 instead of
    ~0.35; random batches, free to regroup every clip, fall to under 0.05).
    """
    out: list[list[int]] = []
    for start in range(0, len(batches), window):
        run = batches[start:start + window]
        groups = [batch[i:i + k] for batch in run for i in range(0, len(batch), k)]
        order = rng.permutation(len(groups))  # ties in length broken at random
        longest = np.array([max(lengths[int(i)] for i in groups[g]) for g in order])
        ranked = [groups[g] for g in order[np.argsort(longest, kind="stable")]]
        per_batch = len(run[0]) // k
        dealt = _distinct_glosses([ranked[i:i + per_batch] for i in range(0, len(ranked), per_batch)], labels)
        if dealt is None or len(dealt) != len(run) or any(len(b) != per_batch for b in dealt):
            out.extend(run)
            continue
        out.extend([i for group in dealt[j] for i in group] for j in rng.permutation(len(dealt)))
    return out


def _distinct_glosses(batches: list[list[list[int]]], labels: np.ndarray) -> list[list[list[int]]] | None:
    """Swap groups between batches until no batch holds a gloss twice (None when a clash cannot be mended)."""
    def gloss(group):
        return labels[int(group[0])]

    for i, batch in enumerate(batches):
        j = 0
        while j < len(batch):
            clash = batch[j]
            others = [gloss(g) for n, g in enumerate(batch) if n != j]
            if gloss(clash) not in others:
                j += 1
                continue
            partner = next(((m, q) for m in sorted(range(len(batches)), key=lambda m: (abs(m - i), m)) if m != i
                            and gloss(clash) not in [gloss(g) for g in batches[m]]
                            for q, g in enumerate(batches[m]) if gloss(g) not in others), None)
            if partner is None:
                return None
            m, q = partner
            batch[j], batches[m][q] = batches[m][q], clash
    return batches


def hard_batches(config: TrainConfig, dataset, model: torch.nn.Module, epoch: int, device,
                 hard_scheduler: HardMiningScheduler) -> list[list[int]]:
    """Batches regrouped hard: embed random pre-batches with the current model (no augmentation)
    and keep the ``--hard_mining_pre_batch_mining_count`` hardest groups of each."""
    labels = dataset.sequences.labels
    n, iters, rng = len(labels), batches_per_epoch(config, len(labels)), _epoch_rng(config, epoch)
    pre_size = min(n, config.batch_size * config.hard_mining_pre_batch_multipler)
    keep = max(1, config.hard_mining_pre_batch_mining_count)
    batches: list[list[int]] = []
    while len(batches) < iters:
        pre = rng.choice(n, size=pre_size, replace=False)
        emb = torch.from_numpy(embed_dataset(model, _SubsetView(dataset, pre), batch_size=64, device=device))
        groups = group_hard_batches(emb, labels[pre], config.batch_size, hard_scheduler.threshold, rng=rng)
        batches.extend(pre[g].tolist() for g in groups[:keep] if len(g) >= 2)
    return batches[:iters]


class _SubsetView:
    """The samples ``indices`` of a SignDataset, without augmentation (for embedding)."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, indices

    def __len__(self):
        return len(self.indices)

    def frames(self, i):
        return self.dataset.frames(int(self.indices[i]))
