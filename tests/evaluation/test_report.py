"""Evaluation protocols on hand-made embeddings, checked against naive loops."""
import numpy as np
import pytest
import torch

from evaluation.knn import map_at_r, masked_centroid_distances, pairwise_distances
from evaluation.report import (
    EmbeddedSet,
    align,
    enrolment_draw,
    evaluate_embeddings,
    exclusion_masks,
    format_per_gloss,
    format_table,
    knn_figures,
    per_gloss_table,
    protocol,
)


def make_set(points, glosses, signers=None, videos=None, names=None):
    names = names or sorted(set(glosses))
    emb = np.asarray(points, np.float32).reshape(len(glosses), -1)
    labels = np.asarray([names.index(g) for g in glosses])
    n = len(glosses)
    return EmbeddedSet(emb, labels, names, np.asarray(videos or [f"v{i}" for i in range(n)]),
                       np.asarray(signers or [""] * n))


def test_top5_counts_distinct_glosses():
    # Six samples of gloss "a" are nearer than any other gloss: ranking samples would fill the top 5 with "a".
    gallery = make_set([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0],
                       ["a"] * 6 + ["b", "c", "d", "e", "f"])
    queries = make_set([-0.05, -0.05], ["e", "f"], names=gallery.label_names)
    result = evaluate_embeddings(gallery, queries, metric="euclidean")
    standard = result.protocols["standard"]
    assert standard.predictions[0].tolist() == [0, 1, 2, 3, 4]          # a, b, c, d, e
    assert standard.metrics["knn_top1"] == 0.0
    assert standard.metrics["knn_top5"] == 0.5                          # "e" is 5th distinct gloss, "f" 6th


def test_same_set_leaves_each_query_out():
    # a1 sits on b1; without leaving itself out a1 would find itself (gloss a) first.
    data = make_set([0.0, 0.05, -10.0, 20.0, 20.1], ["a", "b", "a", "c", "c"])
    result = evaluate_embeddings(data, None, metric="euclidean")
    standard = result.protocols["standard"]
    assert standard.predictions[:, 0].tolist() == [1, 0, 0, 2, 2]      # a1->b, b1->a, a2->a (via a1), c->c
    # b has a single sample: once it leaves itself out it cannot be answered.
    assert standard.eligible.tolist() == [True, False, True, True, True]
    assert standard.metrics["answerable_queries"] == 4
    assert standard.metrics["knn_top1"] == pytest.approx(3 / 4)
    assert standard.metrics["knn_top1_all"] == pytest.approx(3 / 5)


def test_same_video_id_is_left_out_too():
    # Two clips cut from one video: the copy must not count as a neighbour of the other.
    data = make_set([0.0, 0.0, 5.0, 0.3], ["a", "a", "a", "b"], videos=["x", "x", "y", "z"])
    standard = evaluate_embeddings(data, None).protocols["standard"]
    assert standard.predictions[0, 0] == 1   # nearest allowed is "b" at 0.3, not the copy at 0.0 (same video)


def test_cross_signer_never_uses_the_query_signer():
    # Every signer's two clips of a gloss are twins (0.01 apart); the same gloss by other signers is 3+ away
    # and a decoy signer's clip of the other gloss is nearer than that.
    points, glosses, signers = [], [], []
    for s in range(3):
        for g, x in enumerate((0.0, 100.0)):
            base = x + 3.0 * s
            points += [base, base + 0.01]
            glosses += [["a", "b"][g]] * 2
            signers += [f"s{s}"] * 2
    points += [1.0, 104.0]
    glosses += ["b", "a"]
    signers += ["s9", "s9"]
    data = make_set(points, glosses, signers)
    result = evaluate_embeddings(data, None)
    twins = slice(0, 12)
    assert (result.protocols["standard"].predictions[twins, 0] == data.labels[twins]).all()  # found via the twin
    cross = result.protocols["cross_signer"]
    # Naive check: for each query, its top-1 gloss is the gloss of the nearest *other-signer* sample.
    emb = data.embeddings[:, 0]
    for i in range(len(emb)):
        allowed = [j for j in range(len(emb)) if data.signer_ids[j] != data.signer_ids[i]]
        nearest = min(allowed, key=lambda j: abs(emb[j] - emb[i]))
        assert cross.predictions[i, 0] == data.labels[nearest]
    assert cross.metrics["knn_top1"] < 1.0


def test_cross_signer_matches_naive_reference_on_random_data():
    rng = np.random.default_rng(0)
    n, names = 60, [f"g{i}" for i in range(6)]
    data = EmbeddedSet(rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 6, n), names,
                       np.asarray([f"v{i}" for i in range(n)]), np.asarray([f"s{i % 5}" for i in range(n)]))
    cross = evaluate_embeddings(data, None).protocols["cross_signer"]
    d = np.linalg.norm(data.embeddings[:, None] - data.embeddings[None], axis=-1)
    for i in range(n):
        best = {}
        for j in range(n):
            if data.signer_ids[j] == data.signer_ids[i]:
                continue
            best[data.labels[j]] = min(best.get(data.labels[j], np.inf), d[i, j])
        ranking = sorted(best, key=best.get)[:5]
        assert cross.predictions[i, :len(ranking)].tolist() == ranking
        assert cross.eligible[i] == (data.labels[i] in best)


def test_no_cross_signer_protocol_without_signer_ids():
    data = make_set([0.0, 1.0, 2.0, 3.0], ["a", "a", "b", "b"])
    assert set(evaluate_embeddings(data, None).protocols) == {"standard"}


def test_exclusion_masks_for_separate_sets():
    gallery = make_set([0.0, 1.0], ["a", "b"], signers=["s1", "s2"])
    queries = make_set([0.0], ["a"], signers=["s1"])
    base, cross = exclusion_masks(gallery, queries, same=False)
    assert base is None
    assert cross.tolist() == [[True, False]]


def test_enrolment_draw_takes_k_per_gloss_and_is_seeded():
    labels = np.repeat(np.arange(5), [1, 3, 4, 6, 2])
    for shots in (1, 2, 3):
        chosen = enrolment_draw(labels, shots, np.random.default_rng(0))
        counts = np.bincount(labels[chosen], minlength=5)
        assert counts.tolist() == np.minimum([1, 3, 4, 6, 2], shots).tolist()
    a = enrolment_draw(labels, 2, np.random.default_rng(1))
    b = enrolment_draw(labels, 2, np.random.default_rng(1))
    draws = {tuple(enrolment_draw(labels, 2, np.random.default_rng(s))) for s in range(10)}
    assert a.tolist() == b.tolist() and len(draws) > 1


def test_few_shot_zero_shot_protocol():
    # Tight clusters: any one enrolled sample per gloss identifies its gloss.
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(4, 8)) * 10
    glosses = np.repeat(np.arange(4), 5)
    emb = centres[glosses] + rng.normal(size=(20, 8)) * 0.01
    data = EmbeddedSet(emb.astype(np.float32), glosses, ["w", "x", "y", "z"], np.asarray([f"v{i}" for i in range(20)]),
                       np.asarray([""] * 20))
    result = evaluate_embeddings(data, None, shots=[1, 2], draws=3, seed=4)
    one, two = result.protocols["few_shot_1"].metrics, result.protocols["few_shot_2"].metrics
    assert one["knn_top1"] == 1.0 and two["knn_top1"] == 1.0
    assert one["queries"] == 20 - 4 and two["queries"] == 20 - 8   # enrolled clips are not queries
    assert one["draws"] == 3 and one["knn_top1_std"] == 0.0


def test_few_shot_with_separate_queries_uses_every_query():
    gallery = make_set([0.0, 0.2, 5.0, 5.2], ["a", "a", "b", "b"])
    queries = make_set([0.1, 5.1, 4.0], ["a", "b", "b"])
    fs = evaluate_embeddings(gallery, queries, shots=[1], draws=4).protocols["few_shot_1"].metrics
    assert fs["queries"] == 3 and fs["knn_top1"] == 1.0


def test_query_glosses_missing_from_gallery_are_not_answerable():
    gallery = make_set([0.0, 1.0], ["a", "b"])
    queries = make_set([0.0, 1.0, 2.0], ["a", "b", "zz"])
    g, q = align(gallery, queries)
    assert g.label_names == ["a", "b", "zz"] and q.labels.tolist() == [0, 1, 2]
    standard = evaluate_embeddings(gallery, queries).protocols["standard"]
    assert standard.metrics["answerable_queries"] == 2
    assert standard.metrics["knn_top1"] == 1.0 and standard.metrics["knn_top1_all"] == pytest.approx(2 / 3)


def test_masked_centroids_match_naive_means():
    rng = np.random.default_rng(2)
    q, g = rng.normal(size=(7, 3)), rng.normal(size=(12, 3))
    labels = rng.integers(0, 3, 12)
    excluded = torch.from_numpy(rng.random((7, 12)) < 0.4)
    for metric in ("euclidean", "cosine"):
        got = masked_centroid_distances(q, g, labels, 4, excluded, metric).numpy()
        for i in range(7):
            for c in range(4):
                members = [j for j in range(12) if labels[j] == c and not excluded[i, j]]
                if not members:
                    assert np.isinf(got[i, c])
                    continue
                centre = g[members].mean(0)
                if metric == "cosine":
                    want = 1 - centre @ q[i] / np.linalg.norm(centre) / np.linalg.norm(q[i])
                else:
                    want = np.linalg.norm(q[i] - centre)
                assert got[i, c] == pytest.approx(want, abs=1e-5)


def test_map_at_r_matches_naive_definition():
    rng = np.random.default_rng(3)
    q, g = rng.normal(size=(9, 2)), rng.normal(size=(15, 2))
    q_labels, g_labels = rng.integers(0, 3, 9), rng.integers(0, 3, 15)
    excluded = torch.from_numpy(rng.random((9, 15)) < 0.2)
    d = pairwise_distances(q, g)
    scores = []
    for i in range(9):
        allowed = [j for j in np.argsort(d[i].numpy(), kind="stable") if not excluded[i, j]]
        r = sum(g_labels[j] == q_labels[i] for j in allowed)
        if r == 0:
            continue
        hits = [g_labels[j] == q_labels[i] for j in allowed[:r]]
        scores.append(sum(np.mean(hits[: k + 1]) for k in range(r) if hits[k]) / r)
    assert map_at_r(d, q_labels, g_labels, excluded) == pytest.approx(np.mean(scores), abs=1e-6)
    perfect = pairwise_distances(np.array([[0.0], [10.0]]), np.array([[0.1], [0.2], [9.9]]))
    assert map_at_r(perfect, [0, 1], [0, 0, 1]) == 1.0


def test_per_gloss_report_names_the_most_confused_gloss():
    labels = np.array([0, 0, 0, 1, 1])
    predictions = np.array([[0, 1], [1, 0], [1, 2], [2, 1], [1, 0]])
    rows, confusion = per_gloss_table(labels, predictions, np.ones(5, bool), ["a", "b", "c"], ks=(1, 2))
    by = {r["gloss"]: r for r in rows}
    assert by["a"]["top1"] == pytest.approx(1 / 3)
    assert by["a"]["most_confused"] == "b" and by["a"]["confused_count"] == 2
    assert by["b"]["top2"] == 1.0 and by["b"]["most_confused"] == "c"
    assert "c" not in by                                    # no queries of c
    assert confusion[0].tolist() == [1, 2, 0]


def test_report_formats_models_side_by_side():
    data = make_set([0.0, 0.1, 1.0, 1.1, 2.0, 2.1], ["a", "a", "b", "b", "c", "c"], signers=["s1", "s2"] * 3)
    model = evaluate_embeddings(data, None, model="model")
    other = evaluate_embeddings(EmbeddedSet(-data.embeddings * 0, data.labels, data.label_names, data.video_ids,
                                            data.signer_ids), None, model="untrained")
    table = format_table([model, other])
    assert "model" in table.splitlines()[0] and "untrained" in table.splitlines()[0]
    assert "cross_signer" in table and "kNN top-5" in table
    assert "most confused" in format_per_gloss(model, "standard")
    protocol_json = model.to_json()["protocols"]["standard"]
    assert protocol_json["knn_top1"] == 1.0 and len(protocol_json["per_gloss"]) == 3


def test_protocol_cosine_metric_ranks_by_angle():
    gallery = make_set([[1.0, 0.0], [0.0, 5.0]], ["right", "up"])
    queries = make_set([[0.2, 1.0]], ["up"], names=gallery.label_names)
    d = pairwise_distances(queries.embeddings, gallery.embeddings, "cosine")
    result = protocol("p", "", d, gallery, queries, None, "cosine")
    assert result.predictions[0, 0] == 1


@pytest.mark.parametrize("separate", [False, True])
def test_knn_figures_are_the_full_evaluation_figures(separate):
    # Training logs knn_figures; they must be evaluate_embeddings' numbers, not a look-alike.
    rng = np.random.default_rng(3)
    n, names = 50, [f"g{i}" for i in range(7)]
    def random_set(prefix):
        return EmbeddedSet(rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 7, n), names,
                           np.asarray([f"{prefix}{i}" for i in range(n)]), np.asarray([f"s{i % 4}" for i in range(n)]))
    gallery = random_set("g")
    queries = random_set("q") if separate else None
    for metric in ("euclidean", "cosine"):
        full = evaluate_embeddings(gallery, queries, metric=metric).protocols
        figures = knn_figures(gallery, queries, metric=metric)
        assert set(figures) == {"standard", "cross_signer"}
        for name, got in figures.items():
            assert got == {key: full[name].metrics[key] for key in got}
