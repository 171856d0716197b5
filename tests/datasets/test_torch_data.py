import numpy as np
import pytest
import torch

from augmentations import spoter_augmentations
from datasets.errors import UsageError
from datasets.sequences import SequenceSet
from datasets.torch_data import PKSampler, SignDataset, collate, pad_batch, resample_frames


def _dataset(n=24, classes=6, seed=0):
    rng = np.random.default_rng(seed)
    seqs = [rng.uniform(0.2, 0.8, size=(int(rng.integers(5, 15)), 54, 2)).astype(np.float32) for _ in range(n)]
    return SequenceSet.from_sequences(seqs, [i % classes for i in range(n)], [f"g{c}" for c in range(classes)])


def test_pk_sampler_every_batch_is_p_by_k():
    data = _dataset()
    sampler = PKSampler(data.labels, p=3, k=4, num_batches=10, seed=1)
    batches = list(sampler)
    assert len(batches) == 10
    for batch in batches:
        labels = data.labels[batch]
        values, counts = np.unique(labels, return_counts=True)
        assert len(batch) == 12 and len(values) == 3 and (counts == 4).all()
    sampler.set_epoch(1)
    assert list(sampler) != batches  # a new epoch draws new batches
    sampler.set_epoch(0)
    assert list(sampler) == batches  # and the same epoch the same ones


def test_pk_sampler_refuses_impossible_settings():
    data = _dataset(classes=3)
    with pytest.raises(UsageError, match="P=5"):
        PKSampler(data.labels, p=5, k=2)
    with pytest.raises(UsageError, match="K must be"):
        PKSampler(data.labels, p=2, k=1)


def test_collate_pads_and_masks():
    clips = [torch.ones(3, 54, 2), torch.ones(5, 54, 2) * 2]
    batch, mask, labels = collate([(clips[0], 1), (clips[1], 0)])
    assert batch.shape == (2, 5, 54, 2) and mask.tolist() == [[False] * 3 + [True] * 2, [False] * 5]
    assert (batch[0, 3:] == 0).all() and (batch[1] == 2).all() and labels.tolist() == [1, 0]


def test_dataset_items_are_reproducible_and_independent_of_order():
    data = _dataset()
    ds = SignDataset(data, spoter_augmentations(1.0), seed=3)
    a = ds[5][0]
    _ = ds[2]
    assert torch.equal(a, ds[5][0])
    ds.set_epoch(1)
    assert not torch.equal(a, ds[5][0])


def test_resampling_and_frame_cap():
    data = _dataset()
    assert SignDataset(data, resample_to=16)[0][0].shape == (16, 54, 2)
    capped = SignDataset(data, max_frames=6)
    assert all(len(capped[i][0]) <= 6 for i in range(len(data)))
    assert resample_frames(10, 4).tolist() == [0, 3, 6, 9]


def test_pad_batch_matches_lengths():
    clips = [torch.zeros(n, 54, 2) for n in (1, 4, 2)]
    batch, mask = pad_batch(clips)
    assert (~mask).sum(1).tolist() == [1, 4, 2]
