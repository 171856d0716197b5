"""Approximate gallery search (faiss HNSW and IVF-PQ) against exact search: recall, distances,
files beside the gallery (checksummed), enrolment and removal without rebuilding."""
from __future__ import annotations

import numpy as np
import pytest

from datasets.errors import DataError
from evaluation.gallery import Gallery
from evaluation.search import HNSW_SEARCH_EFFORT, ExactIndex, FaissIndex, choose_kind, index_path, recall_at

pytest.importorskip("faiss")


def clustered(n: int, glosses: int, dim: int = 32, seed: int = 0):
    """Embeddings grouped by gloss with per-signer offsets, like a real gallery."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(glosses, dim))
    signers = rng.normal(scale=0.4, size=(10, dim))
    labels = rng.integers(0, glosses, n)
    signer = rng.integers(0, 10, n)
    x = centres[labels] + signers[signer] + rng.normal(scale=0.5, size=(n, dim))
    return x.astype(np.float32), labels, signer


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_approximate_search_finds_the_exact_neighbours_at_exact_distances(kind, metric):
    x, _, _ = clustered(6000, 300)
    queries, _, _ = clustered(200, 300, seed=1)
    exact_d, exact_i = ExactIndex(x, metric).search(queries, 5)
    index = FaissIndex.build(x, kind, metric)
    d, i = index.search(queries, 5)
    recall = recall_at(i, exact_i)
    floor = {"hnsw": (0.99, 0.97), "ivfpq": (0.97, 0.95)}[kind]  # ivfpq trades recall for memory
    assert recall["recall_at_1"] >= floor[0] and recall["recall_at_5"] >= floor[1], recall
    same = i[:, 0] == exact_i[:, 0]
    np.testing.assert_allclose(d[same, 0], exact_d[same, 0], atol=1e-4)   # the model's own distances
    assert (np.diff(d, axis=1) >= -1e-6).all()                           # nearest first


def test_live_count_and_search_effort_follow_enrolment_removal_and_k():
    x, _, _ = clustered(2000, 100)
    index = FaissIndex.build(x, "hnsw", "euclidean")
    assert len(index) == 2000 and index.search_effort == HNSW_SEARCH_EFFORT
    index.add(x[:10] + 0.01, first_row=2000)
    assert len(index) == 2010
    index.keep_rows(np.arange(0, 2010, 2))                     # every other row removed: marked, not dropped
    assert len(index) == 1005 and index.index.ntotal == 2010 and index.deleted_share == pytest.approx(0.5)
    _, rows = index.search(x[:3], 5)
    assert index.index.hnsw.efSearch == HNSW_SEARCH_EFFORT and ((rows >= 0) & (rows < 1005)).all()
    index.search(x[:3], 200)                                    # efSearch grows with k and the deleted rows
    wanted = 200 + min(1005, 4 * 200 + 16)
    assert index.index.hnsw.efSearch == wanted + wanted // 2
    index.search_effort = 16                                    # a lower floor, as the benchmark sweeps it
    index.search(x[:3], 5)
    wanted = 5 + 4 * 5 + 16                                     # room for the deleted rows still wins
    assert index.index.hnsw.efSearch == max(16, wanted + wanted // 2) == 61


def test_auto_is_exact_for_small_galleries_and_hnsw_for_large():
    assert choose_kind("auto", 1000) == "exact" and choose_kind("auto", 10**6) == "hnsw"
    assert choose_kind("ivfpq", 10) == "ivfpq"


def _gallery(n=3000, glosses=150, seed=0) -> Gallery:
    x, labels, signer = clustered(n, glosses, seed=seed)
    return Gallery(x, labels, [f"g{i}" for i in range(glosses)], [f"v{i}" for i in range(n)],
                   [f"s{s}" for s in signer], "euclidean", "digest")


def test_index_saved_beside_the_gallery_is_reused_and_refused_when_it_does_not_match(tmp_path):
    gallery = _gallery()
    path = gallery.save(tmp_path / "gallery.npz")
    queries = gallery.embeddings[:50] + 0.01
    assert gallery.use_index("hnsw", saved_beside=path) == "hnsw"
    saved = index_path(path, "hnsw")
    assert saved.is_file() and saved.name == "gallery.hnsw.npz"
    first = gallery.query(queries, k=5)
    again = Gallery.load(path)
    again.use_index("hnsw", saved_beside=path)
    assert again.index is not gallery.index and again.index.index.ntotal == len(gallery)
    second = again.query(queries, k=5)
    np.testing.assert_array_equal(first.glosses, second.glosses)
    # another gallery written over the file: the old index no longer matches it
    _gallery(seed=3).save(path)
    other = Gallery.load(path)
    with pytest.raises(DataError, match=r"gallery.hnsw.npz: index was built from other embeddings than its gallery"):
        other.use_index("hnsw", saved_beside=path)
    saved.write_bytes(b"PK\x03\x04 damaged")
    with pytest.raises(DataError, match=r"gallery.hnsw.npz: not a readable index file") as error:
        other.use_index("hnsw", saved_beside=path)
    assert "\n" not in str(error.value)
    assert other.use_index("hnsw", saved_beside=path, rebuild=True) == "hnsw"  # --rebuild-index mends it


def test_enrolment_appends_to_the_index_and_removal_marks_rows_without_rebuilding(tmp_path):
    gallery = _gallery()
    path = gallery.save(tmp_path / "gallery.npz")
    gallery.use_index("hnsw", saved_beside=path)
    graph = gallery.index.index
    rng = np.random.default_rng(5)
    new_clips = (rng.normal(size=(1, 32)) * 3 + rng.normal(scale=0.1, size=(3, 32))).astype(np.float32)
    larger = gallery.extend(new_clips, ["my-sign"] * 3, ["mine0", "mine1", "mine2"], ["me"] * 3)
    assert larger.index.index is graph and graph.ntotal == len(gallery) + 3           # appended, not rebuilt
    assert larger.query(new_clips[:1] + 0.01, k=1).top(0)[0][0] == "my-sign"
    larger.save(path)                                                                  # index saved beside, matching
    reloaded = Gallery.load(path)
    reloaded.use_index("hnsw", saved_beside=path)
    assert reloaded.query(new_clips[1:2], k=1).top(0)[0][0] == "my-sign"
    exact = Gallery.load(path)
    np.testing.assert_array_equal(reloaded.query(exact.embeddings[:40], k=5).glosses,
                                  exact.query(exact.embeddings[:40], k=5).glosses)

    smaller = reloaded.without_glosses(["my-sign", "g0"])
    assert "my-sign" not in smaller.label_names and "g0" not in smaller.label_names
    assert smaller.index.index is reloaded_index_graph(smaller) and smaller.index.deleted_share > 0
    answers = smaller.query(exact.embeddings[exact.labels == exact.label_names.index("g0")][:5], k=5)
    assert all(g not in ("g0", "my-sign") for q in range(5) for g, _ in answers.top(q))
    # the same answers as an exact search of the smaller gallery
    plain = Gallery(smaller.embeddings, smaller.labels, smaller.label_names, metric=smaller.metric)
    probe = exact.embeddings[100:140]
    np.testing.assert_array_equal(smaller.query(probe, k=5).glosses, plain.query(probe, k=5).glosses)
    # past a quarter deleted, the index is rebuilt over what is left
    many = [n for n in smaller.label_names[: len(smaller.label_names) // 2]]
    rebuilt = smaller.without_glosses(many)
    assert rebuilt.index.deleted_share == 0 and rebuilt.index.index.ntotal == len(rebuilt)
    with pytest.raises(DataError, match="not in the gallery: 'nope'"):
        rebuilt.without_glosses(["nope"])


def reloaded_index_graph(gallery: Gallery):
    return gallery.index.index
