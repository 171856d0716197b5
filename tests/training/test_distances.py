"""Pairwise distances against float64 brute force; safe gradients at zero distance."""
import pytest
import torch

from training.distances import CosineDistance, EuclideanDistance, same_distance


def brute_euclidean(x, y):
    return ((x[:, None, :].double() - y[None, :, :].double()) ** 2).sum(-1).sqrt()


def brute_cosine(x, y):
    x, y = x.double(), y.double()
    return 1 - (x @ y.T) / (x.norm(dim=1)[:, None] * y.norm(dim=1)[None, :])


@pytest.fixture
def emb():
    return torch.randn(12, 5, generator=torch.Generator().manual_seed(0)) * 3 + 10  # far from the origin


def test_euclidean_matches_brute_force(emb):
    d = EuclideanDistance()(emb)
    assert d.shape == (12, 12)
    torch.testing.assert_close(d.double(), brute_euclidean(emb, emb), atol=1e-4, rtol=1e-5)
    assert (d.diagonal() == 0).all()
    torch.testing.assert_close(d, d.T)


def test_cosine_matches_brute_force(emb):
    x = emb - 10  # mixed signs so distances spread over [0, 2]
    d = CosineDistance()(x)
    torch.testing.assert_close(d.double(), brute_cosine(x, x).fill_diagonal_(0), atol=1e-5, rtol=1e-5)
    assert (d.diagonal() == 0).all() and d.min() >= 0 and d.max() <= 2
    torch.testing.assert_close(CosineDistance()(x * 7.5), d, atol=1e-5, rtol=0)  # scale invariant


def test_cross_distances_have_reference_shape(emb):
    ref = emb[:4] + 1
    torch.testing.assert_close(EuclideanDistance()(emb, ref).double(), brute_euclidean(emb, ref),
                               atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(CosineDistance()(emb, ref).double(), brute_cosine(emb, ref), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("distance", [EuclideanDistance(), CosineDistance()], ids=["euclidean", "cosine"])
def test_duplicates_give_zero_distance_and_finite_gradient(distance):
    base = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    x = torch.cat([base, base[:2]]).requires_grad_()  # rows 4, 5 duplicate rows 0, 1
    d = distance(x)
    assert d[0, 4].abs() < 1e-6 and d[1, 5].abs() < 1e-6
    d.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_euclidean_gradient_matches_finite_differences():
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: EuclideanDistance()(t), (x,))


def test_euclidean_gradient_at_exact_duplicate_is_zero():
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0]], requires_grad=True)
    EuclideanDistance()(x)[0, 1].backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("bad", [torch.zeros(3), torch.zeros(2, 3, 4)])
def test_rejects_non_matrix_input(bad):
    with pytest.raises(ValueError, match="2-D"):
        EuclideanDistance()(bad)


def test_rejects_reference_of_other_width():
    with pytest.raises(ValueError, match="reference"):
        CosineDistance()(torch.zeros(3, 4), torch.zeros(2, 5))


def test_same_distance():
    assert same_distance(EuclideanDistance(), EuclideanDistance())
    assert not same_distance(EuclideanDistance(), EuclideanDistance(eps=1e-6))
    assert not same_distance(EuclideanDistance(), CosineDistance())
    assert not same_distance(None, EuclideanDistance())
