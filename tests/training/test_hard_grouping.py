"""Hard-batch grouping and the threshold scheduler."""
import numpy as np
import pytest
import torch

from training.distances import CosineDistance, EuclideanDistance
from training.hard_grouping import HardMiningScheduler, group_hard_batches, hardness_matrix
from training.losses import TripletMarginLoss


def clustered(seed: int, classes: int = 16, per_class: int = 8, dim: int = 8, noise: float = 0.6):
    """Class clusters around random centres; some centres land close together (hard pairs)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    labels = np.repeat(np.arange(classes), per_class)
    emb = centres[labels] + noise * rng.normal(size=(len(labels), dim))
    return torch.tensor(emb, dtype=torch.float32), torch.tensor(labels)


def mean_active_triplets(emb, labels, batches, margin=0.2):
    loss = TripletMarginLoss(margin=margin)
    counts = []
    for idx in batches:
        loss(emb[idx], labels[idx])
        counts.append(loss.last_stats["active_triplets"])
    return float(np.mean(counts))


def assert_partition(batches, m, batch_size):
    flat = np.concatenate(batches)
    assert flat.dtype == np.int64
    assert np.array_equal(np.sort(flat), np.arange(m))
    assert [len(b) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
    assert 0 < len(batches[-1]) <= batch_size


@pytest.mark.parametrize("seed", range(3))
def test_hard_batches_have_more_active_triplets_than_random_batches(seed):
    emb, labels = clustered(seed)
    batch_size = 16
    hard = group_hard_batches(emb, labels, batch_size, threshold=0.6, rng=np.random.default_rng(seed))
    assert_partition(hard, len(labels), batch_size)
    rng = np.random.default_rng(100 + seed)
    random_means = [mean_active_triplets(emb, labels, np.split(rng.permutation(len(labels)), len(hard)))
                    for _ in range(5)]
    hard_mean = mean_active_triplets(emb, labels, hard)
    assert hard_mean > 2.0 * max(random_means), (hard_mean, random_means)


@pytest.mark.parametrize("m, batch_size", [(64, 16), (70, 16), (5, 16), (33, 2)])
def test_batches_partition_the_pre_batch(m, batch_size):
    g = torch.Generator().manual_seed(m)
    emb, labels = torch.randn(m, 6, generator=g), torch.randint(0, 5, (m,), generator=g)
    batches = group_hard_batches(emb, labels, batch_size, threshold=0.5, rng=np.random.default_rng(0))
    assert len(batches) == -(-m // batch_size)
    assert_partition(batches, m, batch_size)


def test_threshold_above_one_gives_random_batches_that_still_partition():
    emb, labels = clustered(0)
    batches = group_hard_batches(emb, labels, 16, threshold=1.5, rng=np.random.default_rng(1))
    assert_partition(batches, len(labels), 16)
    hard = group_hard_batches(emb, labels, 16, threshold=0.6, rng=np.random.default_rng(1))
    assert mean_active_triplets(emb, labels, hard) > mean_active_triplets(emb, labels, batches)


def test_grouping_is_reproducible_with_a_seeded_generator():
    emb, labels = clustered(4)
    first = group_hard_batches(emb, labels, 16, 0.6, rng=np.random.default_rng(7))
    again = group_hard_batches(emb, labels, 16, 0.6, rng=np.random.default_rng(7))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_labels_may_be_numpy_and_distance_pluggable():
    emb, labels = clustered(2)
    batches = group_hard_batches(emb, labels.numpy(), 16, 0.6, distance=CosineDistance())
    assert_partition(batches, len(labels), 16)


def test_hardness_matrix_extremes():
    emb = torch.tensor([[0.0], [1.0], [3.0], [10.0]])
    labels = torch.tensor([0, 0, 1, 1])
    h = hardness_matrix(EuclideanDistance()(emb), labels)
    assert torch.isinf(h.diagonal()).all() and (h.diagonal() < 0).all()
    off = h[~torch.eye(4, dtype=torch.bool)]
    assert off.min() >= 0 and off.max() <= 1
    assert h[2, 3] == 1.0  # the farthest positive pair (distance 7)
    assert h[0, 3] == 0.0  # the farthest negative pair (distance 10)
    assert h[1, 2] == pytest.approx(1 - 2 / 10)  # the closest negative pair is the hardest negative


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        group_hard_batches(torch.randn(4, 2), torch.arange(4), 1, 0.5)
    with pytest.raises(ValueError, match="labels"):
        group_hard_batches(torch.randn(4, 2), torch.arange(3), 2, 0.5)


def test_scheduler_lowers_threshold_when_too_few_triplets_are_active():
    sched = HardMiningScheduler(threshold=0.5, factor=0.8, min_active_fraction=0.3, window=1, cooldown=0)
    assert sched.step(0.9) == 0.5  # enough active: unchanged
    assert sched.step(0.1) == pytest.approx(0.4)
    assert sched.step(0.1) == pytest.approx(0.32)


def test_scheduler_respects_window_cooldown_and_floor():
    sched = HardMiningScheduler(threshold=0.5, factor=0.5, min_active_fraction=0.25, window=3, cooldown=2,
                                min_threshold=0.2)
    assert sched.step(0.9) == 0.5
    assert sched.step(0.0) == 0.5  # window mean 0.45: enough active
    assert sched.step(0.0) == 0.5  # window mean 0.3: still enough
    assert sched.step(0.0) == 0.25  # the 0.9 left the window: mean 0 -> lowered
    assert sched.step(0.0) == 0.25  # cooldown: only one step since the change
    assert sched.step(0.0) == 0.2  # 0.125 is below the floor
    assert sched.step(0.0) == 0.2


def test_scheduler_state_round_trip():
    sched = HardMiningScheduler(0.5, 0.8, 0.3, window=2, cooldown=0)
    for f in (0.1, 0.2, 0.9):
        sched.step(f)
    clone = HardMiningScheduler(0.5, 0.8, 0.3, window=2, cooldown=0)
    clone.load_state_dict(sched.state_dict())
    assert clone.threshold == sched.threshold
    assert clone.step(0.0) == sched.step(0.0)


@pytest.mark.parametrize("kwargs", [dict(factor=1.0), dict(factor=0.0), dict(min_active_fraction=1.5),
                                    dict(window=0)])
def test_scheduler_rejects_bad_arguments(kwargs):
    args = dict(threshold=0.5, factor=0.8, min_active_fraction=0.3) | kwargs
    with pytest.raises(ValueError):
        HardMiningScheduler(**args)
