"""Length-aware random batches: the same class-free random structure, far less padding."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from augmentations.torch_data import pad_batch
from datasets.errors import UsageError
from training.batches import epoch_batches, random_batches
from training.config import TrainConfig


def _mean_padding(batches, lengths):
    real = sum(lengths[b].sum() for b in batches)
    padded = sum(len(b) * lengths[b].max() for b in batches)
    return 1 - real / padded


@pytest.mark.parametrize("n, batch_size, iters", [(2000, 32, 62), (500, 32, 40), (100, 32, 10), (70, 32, 5)])
def test_length_batches_are_distinct_samples_of_whole_passes(n, batch_size, iters):
    lengths = np.random.default_rng(1).integers(30, 121, n)
    batches = random_batches(n, batch_size, iters, np.random.default_rng(0), lengths=lengths)
    assert len(batches) == iters and all(len(b) == batch_size for b in batches)
    assert all(len(set(b)) == len(b) for b in batches)
    per_pass = n // batch_size
    for start in range(0, iters, per_pass):  # within one pass over the data, no sample twice
        seen = [i for b in batches[start:start + per_pass] for i in b]
        assert len(seen) == len(set(seen))


def test_length_batches_cut_the_padding_of_mixed_length_clips():
    lengths = np.random.default_rng(1).integers(30, 121, 2000)  # WLASL-like: 30-120 frames
    plain = random_batches(2000, 32, 62, np.random.default_rng(0))
    grouped = random_batches(2000, 32, 62, np.random.default_rng(0), lengths=lengths)
    assert _mean_padding(plain, lengths) > 0.3
    assert _mean_padding(grouped, lengths) < 0.05


def test_length_batches_still_mix_glosses_and_order():
    lengths = np.random.default_rng(1).integers(30, 121, 2000)
    labels = np.arange(2000) % 100
    a = random_batches(2000, 32, 62, np.random.default_rng(0), lengths=lengths)
    b = random_batches(2000, 32, 62, np.random.default_rng(1), lengths=lengths)
    assert a != b
    assert np.mean([len(set(labels[x])) for x in a]) > 20  # many glosses per batch, as random batches have
    assert len({tuple(x) for x in a}) == len(a)


def test_epoch_batches_use_lengths_only_when_asked():
    labels = np.arange(400) % 40
    lengths = np.random.default_rng(2).integers(30, 121, 400)
    config = TrainConfig(sampler="random", batch_size=16, length_batching=True)
    grouped = epoch_batches(config, labels, 0, lengths)
    plain = epoch_batches(TrainConfig(sampler="random", batch_size=16), labels, 0, lengths)
    assert _mean_padding(grouped, lengths) < _mean_padding(plain, lengths) / 3
    with pytest.raises(ValueError):
        epoch_batches(config, labels, 0)


def test_length_batching_needs_random_batches():
    with pytest.raises(UsageError, match="--sampler random"):
        TrainConfig(sampler="pk", length_batching=True).check()


def test_pad_batch_rounds_the_width_up_and_masks_exactly_the_padding():
    clips = [torch.ones(t, 54, 2) for t in (17, 3, 32)]
    batch, mask = pad_batch(clips, multiple=16)
    assert batch.shape == (3, 32, 54, 2)
    assert mask.sum(dim=1).tolist() == [15, 29, 0]
    assert batch[~mask].eq(1).all() and batch[mask].eq(0).all()
    assert pad_batch(clips[:2], multiple=16)[0].shape[1] == 32
    assert pad_batch(clips[:2])[0].shape[1] == 17
