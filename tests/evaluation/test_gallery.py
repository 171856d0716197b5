"""Galleries: npz round trip without pickles, distinct-gloss queries, enrolment, pluggable search."""
import numpy as np
import pytest

from datasets.errors import DataError
from datasets.sequences import SequenceSet
from evaluation.gallery import ExactIndex, Gallery, distinct_top_k
from evaluation.knn import pairwise_distances
from evaluation.ranking import nearest_per_gloss, order_glosses, rank_by_nearest


def random_gallery(n=40, dim=6, glosses=7, seed=0, signers=True):
    rng = np.random.default_rng(seed)
    return Gallery(rng.normal(size=(n, dim)), rng.integers(0, glosses, n), [f"gloss{i}" for i in range(glosses)],
                   [f"vid{i}" for i in range(n)], [f"s{i % 3}" for i in range(n)] if signers else None)


def test_npz_round_trip_loads_without_pickle(tmp_path):
    gallery = random_gallery()
    path = gallery.save(tmp_path / "g.npz")
    with np.load(path, allow_pickle=False) as raw:
        assert raw["embeddings"].dtype == np.float32 and raw["embeddings"].shape == (40, 6)
        assert raw["labels"].dtype.kind == "i"
        assert all(raw[key].dtype.kind == "U" for key in ("label_names", "video_ids", "signer_ids"))
        assert not any(raw[key].dtype == object for key in raw.files)
    back = Gallery.load(path)
    np.testing.assert_array_equal(back.embeddings, gallery.embeddings)
    np.testing.assert_array_equal(back.labels, gallery.labels)
    assert back.label_names == gallery.label_names
    assert back.video_ids.tolist() == gallery.video_ids.tolist()
    assert back.signer_ids.tolist() == gallery.signer_ids.tolist()


def test_unknown_signers_are_not_stored(tmp_path):
    path = random_gallery(signers=False).save(tmp_path / "g.npz")
    with np.load(path, allow_pickle=False) as raw:
        assert "signer_ids" not in raw.files
    assert (Gallery.load(path).signer_ids == "").all()


def test_load_refuses_pickles_and_junk(tmp_path):
    np.savez(tmp_path / "obj.npz", embeddings=np.zeros((1, 2), np.float32), labels=np.zeros(1, int),
             label_names=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="pickle"):
        Gallery.load(tmp_path / "obj.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz"):
        Gallery.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "partial.npz", embeddings=np.zeros((1, 2), np.float32))
    with pytest.raises(DataError, match="missing labels, label_names"):
        Gallery.load(tmp_path / "partial.npz")
    with pytest.raises(DataError, match="not found"):
        Gallery.load(tmp_path / "absent.npz")
    np.savez(tmp_path / "bad.npz", embeddings=np.zeros((2, 2), np.float32), labels=np.array([0, 5]),
             label_names=np.array(["a"]))
    with pytest.raises(DataError, match="does not index"):
        Gallery.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_query_ranks_distinct_glosses_like_the_metrics(metric):
    gallery = random_gallery(n=300, glosses=12, seed=1)
    gallery.metric = metric
    queries = np.random.default_rng(2).normal(size=(25, 6)).astype(np.float32)
    matches = gallery.query(queries, k=5, neighbours=3)
    per_class = nearest_per_gloss(pairwise_distances(queries, gallery.embeddings, metric), gallery.labels, 12)
    want_ids, want_d = order_glosses(per_class, 5)
    np.testing.assert_array_equal(matches.glosses, want_ids.numpy())
    np.testing.assert_allclose(matches.gloss_distances, want_d.numpy(), rtol=1e-5, atol=1e-5)
    assert matches.neighbours.shape == (25, 3)
    assert len({g for g, _ in matches.top(0)}) == 5


def test_query_looks_past_a_crowd_of_one_gloss():
    # 200 samples of gloss 0 surround the query; the next gloss is far away. The first neighbour window
    # (40 rows) holds only gloss 0, so the search must widen to find 3 distinct glosses.
    emb = np.concatenate([np.random.default_rng(0).normal(0, 0.01, (200, 2)), [[5.0, 0.0], [9.0, 0.0]]])
    gallery = Gallery(emb, [0] * 200 + [1, 2], ["crowd", "near", "far"])
    matches = gallery.query(np.zeros((1, 2)), k=3)
    assert matches.top(0)[0][0] == "crowd"
    assert [g for g, _ in matches.top(0)] == ["crowd", "near", "far"]
    assert matches.gloss_distances[0, 1] == pytest.approx(5.0)


def test_fewer_glosses_than_k():
    gallery = Gallery(np.eye(3, dtype=np.float32), [0, 1, 1], ["a", "b"])
    matches = gallery.query(np.eye(3, dtype=np.float32)[:1], k=5)
    assert matches.glosses[0].tolist() == [0, 1, -1, -1, -1]
    assert np.isinf(matches.gloss_distances[0, 2:]).all()
    assert [g for g, _ in matches.top(0)] == ["a", "b"]


def test_distinct_top_k_keeps_first_occurrence_order():
    labels = np.array([[3, 3, 1, 3, 2, 1]])
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    got, d, found = distinct_top_k(labels, dist, 2)
    assert got.tolist() == [[3, 1]] and d[0].tolist() == pytest.approx([0.1, 0.3]) and found.tolist() == [3]


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_full_neighbour_search_ranks_like_the_matrix_implementation(metric):
    # Coarse embeddings make many exactly equal distances, across glosses and within one:
    # the index-based ranking must break them as the matrix ranking does (lower gloss id).
    rng = np.random.default_rng(4)
    gallery = rng.integers(-2, 3, size=(120, 3)).astype(np.float32)
    labels = rng.integers(0, 9, size=120)
    queries = rng.integers(-2, 3, size=(40, 3)).astype(np.float32)
    query_labels = rng.integers(0, 9, size=40)
    distances = pairwise_distances(queries, gallery, metric)
    want = rank_by_nearest(distances, labels, query_labels, 9, k=6)
    order = distances.argsort(dim=1, descending=False).numpy()[:, ::-1]   # equal distances in reverse order
    values = np.take_along_axis(distances.numpy(), order, 1)
    resorted = np.argsort(values, axis=1, kind="stable")                   # nearest first, ties still reversed
    order, values = np.take_along_axis(order, resorted, 1), np.take_along_axis(values, resorted, 1)
    got, got_d, found = distinct_top_k(labels[order], values, 6)
    np.testing.assert_array_equal(got, want.predictions)
    np.testing.assert_array_equal(got_d, want.distances)
    assert (found == 9).all()
    matches = Gallery(gallery, labels, [f"g{i}" for i in range(9)], metric=metric).query(queries, k=6)
    np.testing.assert_array_equal(matches.glosses, want.predictions)


def test_extend_enrols_new_glosses_without_touching_old_ones():
    gallery = Gallery(np.array([[0.0, 0.0], [1.0, 0.0]]), [0, 1], ["a", "b"], ["v0", "v1"], ["s", "s"])
    bigger = gallery.extend(np.array([[0.0, 5.0], [1.0, 1.0]]), ["new", "b"], ["v2", "v3"], ["t", "t"])
    assert bigger.label_names == ["a", "b", "new"]
    assert bigger.labels.tolist() == [0, 1, 2, 1]
    assert gallery.label_names == ["a", "b"] and len(gallery) == 2      # the original is unchanged
    assert bigger.query(np.array([[0.1, 4.8]]), k=1).top(0)[0][0] == "new"
    with pytest.raises(ValueError, match="new embeddings must be"):
        gallery.extend(np.zeros((1, 3)), ["x"])
    with pytest.raises(ValueError, match="1 glosses for 2"):
        gallery.extend(np.zeros((2, 2)), ["x"])


def test_from_sequences_keeps_only_present_glosses():
    seqs = SequenceSet.from_sequences([np.zeros((2, 54, 2))] * 3, [2, 0, 2], ["x", "y", "z"],
                                      video_ids=["a", "b", "c"], signer_ids=["p", "q", "p"])
    gallery = Gallery.from_sequences(np.zeros((3, 4)), seqs, "cosine", "abc")
    assert gallery.label_names == ["x", "z"] and gallery.labels.tolist() == [1, 0, 1]
    assert gallery.metric == "cosine" and gallery.model_digest == "abc" and gallery.signers_known


def test_exact_index_matches_numpy_and_can_be_replaced():
    gallery = random_gallery(n=50, seed=5)
    queries = np.random.default_rng(6).normal(size=(7, 6)).astype(np.float32)
    index = ExactIndex(gallery.embeddings, block=3)   # several blocks
    d, i = index.search(queries, 4)
    full = np.linalg.norm(queries[:, None] - gallery.embeddings[None], axis=-1)
    np.testing.assert_array_equal(i, np.argsort(full, axis=1)[:, :4])
    np.testing.assert_allclose(d, np.sort(full, axis=1)[:, :4], rtol=1e-4)

    class Recording:
        """Any object with search(queries, k) can stand in (e.g. an approximate index)."""

        def __init__(self):
            self.calls = []

        def search(self, q, k):
            self.calls.append(k)
            return index.search(q, k)

    replacement = Recording()
    gallery.set_index(replacement)
    gallery.query(queries, k=2)
    assert replacement.calls


def test_invalid_galleries_are_refused():
    with pytest.raises(ValueError, match="duplicates"):
        Gallery(np.zeros((2, 2)), [0, 1], ["a", "a"])
    with pytest.raises(ValueError, match="NaN"):
        Gallery(np.array([[np.nan, 0.0]]), [0], ["a"])
    with pytest.raises(ValueError, match="metric"):
        Gallery(np.zeros((1, 2)), [0], ["a"], metric="manhattan")
    with pytest.raises(ValueError, match="must be \\(Q, 2\\)"):
        Gallery(np.zeros((1, 2)), [0], ["a"]).query(np.zeros((1, 3)))
