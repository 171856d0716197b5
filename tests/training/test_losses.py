"""TripletMarginLoss against brute-force triplet loops: values, statistics, gradients, memory."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from training.distances import CosineDistance, EuclideanDistance
from training.losses import TripletMarginLoss
from training.miners import BatchAllMiner, BatchHardMiner

DISTANCES = [EuclideanDistance(), CosineDistance()]
IDS = ["euclidean", "cosine"]


def batch(seed: int, size: int = 10, classes: int = 3, dim: int = 4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(size, dim, generator=g), torch.randint(0, classes, (size,), generator=g)


def brute_batch_all(dist, labels, margin, keep_margin=None):
    """(loss, active, valid) by enumerating every triple; mean over kept (or all valid) triplets."""
    d, lab, b = dist.tolist(), labels.tolist(), len(labels)
    total, kept, active, valid = 0.0, 0, 0, 0
    for a, p, n in itertools.product(range(b), repeat=3):
        if a == p or lab[a] != lab[p] or lab[a] == lab[n]:
            continue
        value = d[a][p] - d[a][n] + margin
        valid += 1
        active += value > 0
        if keep_margin is None or d[a][p] - d[a][n] + keep_margin > 0:
            kept += 1
            total += max(value, 0.0)
    return (total / kept if kept else 0.0), active, valid


def brute_batch_hard(dist, labels, margin, smooth=False):
    d, lab, b = dist.tolist(), labels.tolist(), len(labels)
    values = []
    for a in range(b):
        pos = [d[a][j] for j in range(b) if j != a and lab[j] == lab[a]]
        neg = [d[a][j] for j in range(b) if lab[j] != lab[a]]
        if pos and neg:
            values.append(max(pos) - min(neg) + margin)
    losses = [math.log1p(math.exp(v)) if smooth else max(v, 0.0) for v in values]
    return (sum(losses) / len(losses) if losses else 0.0), sum(v > 0 for v in values), len(values)


def check_stats(loss_fn, active, valid):
    stats = loss_fn.last_stats
    assert stats["active_triplets"] == active and stats["valid_triplets"] == valid
    assert stats["fraction_active"] == pytest.approx(active / valid if valid else 0.0)


@pytest.mark.parametrize("distance", DISTANCES, ids=IDS)
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("filter_easy", [False, True], ids=["all", "filtered"])
def test_batch_all_matches_brute_force(distance, seed, filter_easy):
    emb, labels = batch(seed)
    margin = 0.3
    loss_fn = TripletMarginLoss(margin=margin, distance=distance,
                                miner=BatchAllMiner(margin=margin, filter_easy=filter_easy))
    loss = loss_fn(emb, labels)
    expected, active, valid = brute_batch_all(distance(emb), labels, margin, margin if filter_easy else None)
    assert 0 < active < valid
    assert loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    check_stats(loss_fn, active, valid)


def test_default_loss_is_mean_over_active_triplets():
    emb, labels = batch(11)
    loss_fn = TripletMarginLoss(margin=0.5)
    d = EuclideanDistance()(emb)
    expected, active, valid = brute_batch_all(d, labels, 0.5, keep_margin=0.5)
    assert loss_fn(emb, labels).item() == pytest.approx(expected, rel=1e-5)
    check_stats(loss_fn, active, valid)
    unfiltered, _, _ = brute_batch_all(d, labels, 0.5)
    assert expected > unfiltered  # averaging over fewer triplets: the filter mattered


@pytest.mark.parametrize("miner_margin", [0.05, 0.6])
def test_batch_all_with_miner_margin_different_from_loss_margin(miner_margin):
    emb, labels = batch(5)
    loss_fn = TripletMarginLoss(margin=0.3, miner=BatchAllMiner(margin=miner_margin, filter_easy=True))
    expected, active, valid = brute_batch_all(EuclideanDistance()(emb), labels, 0.3, keep_margin=miner_margin)
    assert loss_fn(emb, labels).item() == pytest.approx(expected, rel=1e-5)
    check_stats(loss_fn, active, valid)


@pytest.mark.parametrize("distance", DISTANCES, ids=IDS)
@pytest.mark.parametrize("smooth", [False, True], ids=["hinge", "softplus"])
@pytest.mark.parametrize("seed", range(3))
def test_batch_hard_matches_brute_force(distance, smooth, seed):
    emb, labels = batch(seed)
    loss_fn = TripletMarginLoss(margin=0.2, distance=distance, miner=BatchHardMiner(), smooth=smooth)
    expected, active, valid = brute_batch_hard(distance(emb), labels, 0.2, smooth)
    assert loss_fn(emb, labels).item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    check_stats(loss_fn, active, valid)


def test_batch_hard_mines_with_the_miners_own_distance():
    emb, labels = batch(2, size=12)
    loss_fn = TripletMarginLoss(margin=0.2, miner=BatchHardMiner(distance=CosineDistance()))
    a, p, n = BatchHardMiner(distance=CosineDistance())(emb, labels)
    d = EuclideanDistance()(emb)
    expected = F.relu(d[a, p] - d[a, n] + 0.2).mean()
    assert loss_fn(emb, labels).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("make_miner", [lambda: BatchAllMiner(), lambda: BatchAllMiner(filter_easy=True),
                                        lambda: BatchHardMiner()], ids=["all", "filtered", "hard"])
def test_single_sample_label(make_miner):
    emb, labels = batch(4, size=9)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 7])  # label 7 has one sample: never an anchor
    loss_fn = TripletMarginLoss(margin=0.4, miner=make_miner())
    loss = loss_fn(emb, labels)
    d = EuclideanDistance()(emb)
    if isinstance(loss_fn.miner, BatchHardMiner):
        expected, active, valid = brute_batch_hard(d, labels, 0.4)
        assert valid == 8
    else:
        keep = 0.2 if loss_fn.miner.filter_easy else None
        expected, active, valid = brute_batch_all(d, labels, 0.4, keep)
        assert valid == 3 * 2 * 6 + 3 * 2 * 6 + 2 * 1 * 7
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    check_stats(loss_fn, active, valid)


def naive_batch_all(emb, labels, margin, filter_easy):
    """Differentiable B^3 reference (the published formulation), float64."""
    d = EuclideanDistance()(emb.double())
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    valid = (same & ~eye)[:, :, None] & ~same[:, None, :]
    values = F.relu(d[:, :, None] - d[:, None, :] + margin) * valid
    count = ((values > 0) if filter_easy else valid).sum()
    return values.sum() / count


@pytest.mark.parametrize("filter_easy", [False, True], ids=["all", "filtered"])
def test_batch_all_gradient_matches_naive_cubic_reference(filter_easy):
    emb, labels = batch(9, size=12, classes=4)
    x = emb.clone().requires_grad_()
    TripletMarginLoss(margin=0.3, miner=BatchAllMiner(margin=0.3, filter_easy=filter_easy))(x, labels).backward()
    ref = emb.double().requires_grad_()
    naive_batch_all(ref, labels, 0.3, filter_easy).backward()
    assert x.grad.abs().max() > 0
    torch.testing.assert_close(x.grad.double(), ref.grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("make_miner", [lambda: BatchAllMiner(), lambda: BatchAllMiner(filter_easy=True),
                                        lambda: BatchHardMiner()], ids=["all", "filtered", "hard"])
@pytest.mark.parametrize("distance", DISTANCES, ids=IDS)
def test_duplicate_embeddings_give_finite_gradients(make_miner, distance):
    emb, labels = batch(1, size=8)
    emb = torch.cat([emb, emb[:4], emb[:2]])  # exact duplicates: zero distances, same and other labels
    labels = torch.cat([labels, labels[:4], (labels[:2] + 1) % 3])
    x = emb.clone().requires_grad_()
    loss = TripletMarginLoss(margin=0.2, distance=distance, miner=make_miner())(x, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("make_miner", [lambda: BatchAllMiner(), lambda: BatchAllMiner(filter_easy=True),
                                        lambda: BatchHardMiner()], ids=["all", "filtered", "hard"])
@pytest.mark.parametrize("labels", [torch.arange(6), torch.zeros(6, dtype=torch.long)], ids=["distinct", "same"])
def test_no_valid_triplets_gives_zero_loss_that_backpropagates(make_miner, labels):
    x = torch.randn(6, 4, requires_grad=True)
    loss_fn = TripletMarginLoss(miner=make_miner())
    loss = loss_fn(x, labels)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))
    check_stats(loss_fn, 0, 0)


def test_all_easy_filtered_batch_gives_zero_loss():
    emb = torch.tensor([[0.0, 0.0], [0.0, 0.1], [10.0, 0.0], [10.0, 0.1]])
    loss_fn = TripletMarginLoss(margin=0.2)
    assert loss_fn(emb, torch.tensor([0, 0, 1, 1])).item() == 0.0
    check_stats(loss_fn, 0, 8)


class LargestTensor(TorchDispatchMode):
    """Records the element count of the largest tensor any op produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("miner", [BatchAllMiner(), BatchAllMiner(filter_easy=True), BatchHardMiner()],
                         ids=["all", "filtered", "hard"])
def test_loss_memory_is_quadratic_not_cubic(miner):
    b = 96
    emb, labels = batch(0, size=b, classes=8, dim=16)
    x = emb.requires_grad_()
    with LargestTensor() as mode:
        TripletMarginLoss(miner=miner)(x, labels).backward()
    assert mode.largest <= b * (b + 1), f"largest intermediate has {mode.largest} elements (B^3 = {b ** 3})"


def test_invalid_compositions_are_clear_errors():
    with pytest.raises(ValueError, match="softplus"):
        TripletMarginLoss(smooth=True)
    with pytest.raises(ValueError, match="distance"):
        TripletMarginLoss(distance=EuclideanDistance(), miner=BatchAllMiner(distance=CosineDistance()))
