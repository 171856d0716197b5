"""The one recognition rule: glosses by nearest allowed sample, ties to the lower id, hits over answerable queries."""
import numpy as np
import pytest
import torch

from evaluation.ranking import nearest_per_gloss, order_glosses, rank_by_nearest, rank_glosses


def test_nearest_per_gloss_honours_the_mask():
    distances = torch.tensor([[0.5, 0.1, 2.0, 3.0]])
    excluded = torch.tensor([[False, True, False, False]])
    per_gloss = nearest_per_gloss(distances, [0, 0, 1, 3], 4, excluded)
    assert per_gloss.tolist() == [[0.5, 2.0, float("inf"), 3.0]]


def test_order_glosses_breaks_ties_by_gloss_id_and_pads():
    ids, values = order_glosses(torch.tensor([[1.0, 0.5, 0.5, float("inf")]]), 6)
    assert ids.tolist() == [[1, 2, 0, -1, -1, -1]]
    assert values[0, :3].tolist() == [0.5, 0.5, 1.0] and torch.isinf(values[0, 3:]).all()
    # The same candidates given in another column order, with explicit ids: the same answer.
    ids, values = order_glosses(torch.tensor([[0.5, 9.0, 1.0, 0.5]]), 3, torch.tensor([[2, -1, 0, 1]]))
    assert ids.tolist() == [[1, 2, 0]] and values.tolist() == [[0.5, 0.5, 1.0]]


def test_eligibility_and_both_accuracies():
    # Query 0: gloss 0, found first. Query 1: gloss 1, second. Query 2: gloss 3 has no sample at all.
    # Query 3: gloss 1 but its only allowed sample is masked away.
    distances = torch.tensor([[0.1, 0.5, 0.2], [0.1, 0.5, 0.2], [0.3, 0.4, 0.9], [0.3, 0.4, 0.1]])
    excluded = torch.zeros(4, 3, dtype=torch.bool)
    excluded[3, 2] = True
    ranking = rank_by_nearest(distances, [0, 2, 1], [0, 1, 3, 1], 4, excluded, k=2)
    assert ranking.predictions.tolist() == [[0, 1], [0, 1], [0, 2], [0, 2]]
    assert ranking.eligible.tolist() == [True, True, False, False]
    assert ranking.hits(1).tolist() == [True, False, False, False]
    figures = ranking.accuracy(ks=(1, 2))
    assert figures == pytest.approx({"knn_top1": 0.5, "knn_top1_all": 0.25, "knn_top2": 1.0, "knn_top2_all": 0.5})


def test_query_gloss_outside_the_gallery_vocabulary_is_unanswerable():
    ranking = rank_glosses(torch.tensor([[0.2, 0.1]]), np.array([5]), k=1)
    assert ranking.eligible.tolist() == [False] and ranking.predictions.tolist() == [[1]]
    assert np.isnan(ranking.accuracy(ks=(1,))["knn_top1"]) and ranking.accuracy(ks=(1,))["knn_top1_all"] == 0.0
