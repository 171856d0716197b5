import numpy as np
import pytest
import torch

from augmentations import spoter_augmentations
from datasets.errors import UsageError
from datasets.sequences import SequenceSet
from torch.utils.data import DataLoader

from augmentations.torch_data import Draw, PKSampler, SignDataset, collate, pad_batch, resample_frames


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


def _uneven_labels():
    """Classes of 6, 5, 4, 3 and 2 samples, interleaved: with K=4, two classes are smaller than K."""
    sizes = (6, 5, 4, 3, 2)
    return np.random.default_rng(0).permutation(np.repeat(np.arange(len(sizes)), sizes))


def test_pk_sampler_never_repeats_a_sample_of_a_class_with_k_or_more():
    labels = _uneven_labels()
    for batch in PKSampler(labels, p=3, k=4, num_batches=40, seed=2):
        for c in np.unique(labels[batch]):
            drawn = [int(i) for i in batch if labels[i] == c]
            if (labels == c).sum() >= 4:
                assert len(set(drawn)) == 4 and not any(isinstance(i, Draw) for i in batch if labels[i] == c)


def test_pk_sampler_draws_every_member_of_a_small_class_before_repeating():
    labels = _uneven_labels()
    seen_small = 0
    for batch in PKSampler(labels, p=4, k=4, num_batches=40, seed=3):
        for c in np.unique(labels[batch]):
            members = set(np.flatnonzero(labels == c).tolist())
            drawn = [i for i in batch if labels[i] == c]
            assert len(drawn) == 4
            if len(members) < 4:
                seen_small += 1
                firsts = drawn[:len(members)]
                assert set(firsts) == members and not any(isinstance(i, Draw) for i in firsts)
                assert [getattr(i, "occurrence", 0) for i in drawn] == [n // len(members) for n in range(4)]
    assert seen_small > 0


def test_repeated_draws_of_one_sample_are_augmented_differently(tmp_path):
    data = _dataset(n=10, classes=5)  # 2 samples per class, K=3: every batch repeats one sample per class
    ds = SignDataset(data, spoter_augmentations(1.0), seed=4)
    batch = next(iter(PKSampler(data.labels, p=2, k=3, num_batches=1, seed=0)))
    repeats = [i for i in batch if isinstance(i, Draw)]
    assert len(repeats) == 2
    for repeat in repeats:
        assert not torch.equal(ds[repeat][0], ds[int(repeat)][0])
        assert torch.equal(ds[repeat][0], ds[Draw(int(repeat), repeat.occurrence)][0])  # reproducible
    # through DataLoader workers (the draws are pickled to them), in the same order as in-process
    single = list(DataLoader(ds, batch_sampler=[batch], collate_fn=collate, num_workers=0))[0][0]
    workers = list(DataLoader(ds, batch_sampler=[batch], collate_fn=collate, num_workers=2))[0][0]
    assert torch.equal(single, workers)
    distinct = {tuple(single[j].flatten().tolist()) for j in range(len(batch))}
    assert len(distinct) == len(batch)  # no two items of the batch are bit-identical


def test_pk_sampler_is_deterministic_by_seed_and_epoch():
    labels = _uneven_labels()
    first = [[(int(i), getattr(i, "occurrence", 0)) for i in b] for b in PKSampler(labels, p=3, k=4, num_batches=8, seed=5)]
    again = [[(int(i), getattr(i, "occurrence", 0)) for i in b] for b in PKSampler(labels, p=3, k=4, num_batches=8, seed=5)]
    other = [[(int(i), getattr(i, "occurrence", 0)) for i in b] for b in PKSampler(labels, p=3, k=4, num_batches=8, seed=6)]
    assert first == again and first != other


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
