"""Miners against brute-force enumeration of every (anchor, positive, negative) triple."""
import itertools

import pytest
import torch

from training.distances import CosineDistance, EuclideanDistance
from training.miners import BatchAllMiner, BatchHardMiner

DISTANCES = [EuclideanDistance(), CosineDistance()]


def batch(seed: int, size: int = 10, classes: int = 3, dim: int = 4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(size, dim, generator=g), torch.randint(0, classes, (size,), generator=g)


def brute_triplets(dist, labels, margin=None):
    """All valid triplets; with a margin only those with d(a,p) - d(a,n) + margin > 0."""
    d, lab, b = dist.tolist(), labels.tolist(), len(labels)
    out = set()
    for a, p, n in itertools.product(range(b), repeat=3):
        if a != p and lab[a] == lab[p] and lab[a] != lab[n]:
            if margin is None or d[a][p] - d[a][n] + margin > 0:
                out.add((a, p, n))
    return out


def as_set(triplets):
    return set(zip(*(t.tolist() for t in triplets), strict=True))


@pytest.mark.parametrize("distance", DISTANCES, ids=["euclidean", "cosine"])
@pytest.mark.parametrize("seed", range(4))
def test_batch_all_returns_every_valid_triplet(distance, seed):
    emb, labels = batch(seed)
    mined = as_set(BatchAllMiner(distance=distance)(emb, labels))
    expected = brute_triplets(distance(emb), labels)
    assert mined == expected and len(expected) > 0


@pytest.mark.parametrize("distance", DISTANCES, ids=["euclidean", "cosine"])
@pytest.mark.parametrize("margin", [0.0, 0.1, 0.5])
def test_batch_all_filter_easy_keeps_positive_hinge_triplets(distance, margin):
    emb, labels = batch(7)
    miner = BatchAllMiner(distance=distance, margin=margin, filter_easy=True)
    mined = as_set(miner(emb, labels))
    expected = brute_triplets(distance(emb), labels, margin=margin)
    assert mined == expected
    assert 0 < len(expected) < len(brute_triplets(distance(emb), labels))  # the filter did something


def test_batch_all_chunking_does_not_change_the_result():
    emb, labels = batch(3, size=23, classes=4)
    small = as_set(BatchAllMiner(chunk_size=1)(emb, labels))
    large = as_set(BatchAllMiner(chunk_size=1000)(emb, labels))
    assert small == large == brute_triplets(EuclideanDistance()(emb), labels)


@pytest.mark.parametrize("distance", DISTANCES, ids=["euclidean", "cosine"])
@pytest.mark.parametrize("seed", range(4))
def test_batch_hard_picks_farthest_positive_and_closest_negative(distance, seed):
    emb, labels = batch(seed)
    labels[0] = 99  # a label with a single sample: no positive, so anchor 0 is dropped
    a, p, n = BatchHardMiner(distance=distance)(emb, labels)
    d, lab = distance(emb).tolist(), labels.tolist()
    expected = []
    for i in range(len(lab)):
        pos = [j for j in range(len(lab)) if j != i and lab[j] == lab[i]]
        neg = [j for j in range(len(lab)) if lab[j] != lab[i]]
        if pos and neg:
            expected.append((i, max(pos, key=lambda j: d[i][j]), min(neg, key=lambda j: d[i][j])))
    assert list(zip(a.tolist(), p.tolist(), n.tolist(), strict=True)) == expected
    assert 0 not in a.tolist()


def test_no_triplets_when_all_labels_equal_or_all_distinct():
    emb = torch.randn(6, 3)
    for labels in (torch.zeros(6, dtype=torch.long), torch.arange(6)):
        for miner in (BatchAllMiner(), BatchHardMiner()):
            a, p, n = miner(emb, labels)
            assert a.numel() == p.numel() == n.numel() == 0


def test_mining_does_not_track_gradients():
    emb, labels = batch(0)
    emb.requires_grad_()
    for miner in (BatchAllMiner(filter_easy=True), BatchHardMiner()):
        assert not any(t.requires_grad for t in miner(emb, labels))


@pytest.mark.parametrize("labels, message", [
    (torch.zeros(5, dtype=torch.long), "labels must be"),
    (torch.zeros(6), "integer"),
    (torch.zeros(6, 1, dtype=torch.long), "labels must be"),
])
def test_bad_labels_are_clear_errors(labels, message):
    with pytest.raises(ValueError, match=message):
        BatchHardMiner()(torch.randn(6, 3), labels)


def test_output_check_catches_an_invalid_triplet():
    labels = torch.tensor([0, 0, 1])
    idx = torch.tensor
    with pytest.raises(RuntimeError, match="invalid triplet"):
        BatchHardMiner.check_output(idx([0]), idx([1]), idx([1]), labels)  # negative has the anchor's label
