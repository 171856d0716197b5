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

    With ``--length_batching`` the random batches are regrouped by the clips' ``lengths``.
    """
    iters = batches_per_epoch(config, len(labels))
    if config.sampler == "pk":
        k = config.samples_per_class
        sampler = PKSampler(labels, p=max(2, config.batch_size // k), k=k, num_batches=iters, seed=config.seed)
        sampler.set_epoch(epoch)
        return list(sampler)
    if config.length_batching:
        if lengths is None:
            raise ValueError("length batching needs the clips' lengths")
        return random_batches(len(labels), config.batch_size, iters, _epoch_rng(config, epoch), lengths=lengths)
    return random_batches(len(labels), config.batch_size, iters, _epoch_rng(config, epoch))


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
