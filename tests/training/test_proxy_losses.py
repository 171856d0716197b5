"""CosFaceLoss and SupConLoss against explicit per-sample formulas, their refusals, and training use."""
import math

import pytest
import torch
import torch.nn.functional as F

from training.losses import CosFaceLoss, SupConLoss


def batch(seed: int, size: int = 12, classes: int = 4, dim: int = 6):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(size, dim, generator=g), torch.randint(0, classes, (size,), generator=g)


def cosface_by_hand(embeddings, labels, proxies, scale, margin, subcenters):
    """Per-sample loop: cosine to the nearest sub-centre of each class, margin on the true class."""
    classes = proxies.shape[0] // subcenters
    total = 0.0
    for e, y in zip(embeddings.tolist(), labels.tolist()):
        e = torch.tensor(e)
        logits = []
        for c in range(classes):
            best = max(float(F.cosine_similarity(e, proxies[c * subcenters + j], dim=0)) for j in range(subcenters))
            logits.append(scale * (best - (margin if c == y else 0.0)))
        top = max(logits)
        total += -(logits[y] - top - math.log(sum(math.exp(v - top) for v in logits)))
    return total / len(labels)


@pytest.mark.parametrize("subcenters", [1, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_cosface_matches_the_formula(seed, subcenters):
    embeddings, labels = batch(seed)
    loss = CosFaceLoss(4, embeddings.shape[1], scale=10.0, margin=0.3, subcenters=subcenters)
    expected = cosface_by_hand(embeddings, labels, loss.proxies.detach(), 10.0, 0.3, subcenters)
    assert float(loss(embeddings, labels)) == pytest.approx(expected, rel=1e-5)


def test_cosface_margin_raises_the_loss_and_scale_of_embeddings_does_not_matter():
    embeddings, labels = batch(2)
    plain, margin = CosFaceLoss(4, 6, margin=0.0), CosFaceLoss(4, 6, margin=0.3)
    margin.load_state_dict(plain.state_dict())
    assert float(margin(embeddings, labels)) > float(plain(embeddings, labels))
    assert float(plain(embeddings * 7.0, labels)) == pytest.approx(float(plain(embeddings, labels)), rel=1e-5)


def test_cosface_trains_its_proxies_and_the_embeddings():
    embeddings, labels = batch(3)
    embeddings.requires_grad_(True)
    loss = CosFaceLoss(4, 6)
    loss(embeddings, labels).backward()
    assert loss.proxies.grad is not None and float(loss.proxies.grad.abs().sum()) > 0
    assert float(embeddings.grad.abs().sum()) > 0


def test_cosface_reports_accuracy_and_refuses_bad_labels():
    embeddings, labels = batch(4)
    loss = CosFaceLoss(4, 6, margin=0.0)
    loss(embeddings, labels)
    cos = F.normalize(embeddings, dim=1) @ F.normalize(loss.proxies.detach(), dim=1).T
    assert loss.last_stats["train_accuracy"] == pytest.approx(float((cos.argmax(1) == labels).float().mean()))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        loss(embeddings, torch.full_like(labels, 4))
    with pytest.raises(ValueError, match="classes"):
        CosFaceLoss(1, 6)


def supcon_by_hand(embeddings, labels, temperature):
    unit = F.normalize(embeddings, dim=1)
    sims = (unit @ unit.T / temperature).tolist()
    labels = labels.tolist()
    losses = []
    for a in range(len(labels)):
        others = [j for j in range(len(labels)) if j != a]
        positives = [j for j in others if labels[j] == labels[a]]
        if not positives:
            continue
        log_z = math.log(sum(math.exp(sims[a][j]) for j in others))
        losses.append(-sum(sims[a][p] - log_z for p in positives) / len(positives))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_supcon_matches_the_formula(seed):
    embeddings, labels = batch(seed)
    assert float(SupConLoss(0.2)(embeddings, labels)) == pytest.approx(supcon_by_hand(embeddings, labels, 0.2),
                                                                       rel=1e-5)


def test_supcon_without_positives_is_zero_but_differentiable():
    embeddings = torch.randn(4, 3, requires_grad=True)
    loss = SupConLoss()(embeddings, torch.arange(4))
    loss.backward()
    assert float(loss) == 0.0 and embeddings.grad is not None

