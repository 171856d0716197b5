"""Nearest-neighbour indexes over a gallery's embeddings: exact, and approximate with faiss.

A gallery answers a query through an index's ``search(queries, k)`` (the ``k`` nearest rows,
nearest first). Which index pays off depends on the size (measured in
``bench/bench_search.py``, JSON in ``bench/reports/search.json``):

* ``exact``: one matrix product per block of queries; perfect, and within a fraction of a
  millisecond of HNSW below :data:`AUTO_EXACT_BELOW` embeddings (no build either).
* ``hnsw``: faiss' HNSW graph over the full vectors (M = 32, efSearch ≥ 96); sub-millisecond
  single queries at 10⁶ × 64-d with recall@1 ≥ 0.99 against exact. Memory ≈ the vectors +
  ~0.3 KB per vector.
* ``ivfpq``: faiss' inverted lists of product-quantised codes (``d/4`` bytes a vector), for
  galleries whose vectors would not fit in memory twice; candidates are re-ranked with the
  gallery's exact vectors, so the distances returned are exact.
* ``auto``: exact below :data:`AUTO_EXACT_BELOW`, HNSW above.

Distances are always the metric the model was trained with, exactly as :class:`ExactIndex`
computes them (euclidean, or cosine distance ``1 - cos``), so rankings and thresholds mean the
same whichever index answered. Approximate indexes are saved beside the gallery ``.npz`` as
``<gallery>.<kind>.npz`` (faiss' own serialisation as a byte array, no pickle) with a checksum of
the gallery's embeddings; a file that does not match its gallery is refused with one line.

Enrolment appends to an index (:meth:`add`) without rebuilding it; removing rows marks them
deleted (HNSW cannot drop nodes) and the index is rebuilt once a quarter of it is deleted.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from datasets.atomic import atomic_write
from datasets.errors import DataError, UsageError

log = logging.getLogger(__name__)

METRICS = ("euclidean", "cosine")
INDEX_KINDS = ("exact", "hnsw", "ivfpq", "auto")
# Measured (bench/bench_search.py, one thread): below this, an exact single query takes about
# 0.3 ms or less, within ~0.15 ms of HNSW, with perfect recall and no index to build.
AUTO_EXACT_BELOW = 10_000
HNSW_NEIGHBOURS = 32        # M: graph degree
HNSW_BUILD_EFFORT = 80      # efConstruction
# efSearch floor (raised to 1.5x the rows wanted for larger k). Measured at 10⁶ × 64-d, one thread,
# 1000 queries: 64 gives recall@1 0.990, 96 gives 0.995 (recall@5 0.992) at p50 ≈ 0.5-0.8 ms.
HNSW_SEARCH_EFFORT = 96
IVF_PROBES = 48             # inverted lists visited per query, at least ...
IVF_PROBE_SHARE = 8         # ... and one list in this many (measured at 10⁶: 1/8 gives recall@1 ≈ 0.95)
IVF_RERANK = 32             # candidates re-ranked exactly per wanted neighbour
REBUILD_DELETED_SHARE = 0.25
INDEX_FORMAT = 1
EXACT_BLOCK_VALUES = 2 ** 25  # float32 distances per exact-search block (128 MB)
_ADD_CHUNK = 20_000


def embeddings_checksum(embeddings: np.ndarray) -> str:
    """SHA-256 of the gallery's float32 embeddings: what an index file must have been built from."""
    array = np.ascontiguousarray(embeddings, dtype=np.float32)
    digest = hashlib.sha256(str(array.shape).encode())
    digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")


class ExactIndex:
    """Brute-force nearest neighbours: one matrix product per block of queries."""

    kind = "exact"

    def __init__(self, embeddings: np.ndarray, metric: str = "euclidean", block: int | None = None):
        _check_metric(metric)
        self.embeddings = torch.as_tensor(np.asarray(embeddings, np.float32))
        self.metric = metric
        # queries per matrix product: a (block, N) distance block stays near 128 MB at any gallery size
        self.block = block or int(np.clip(EXACT_BLOCK_VALUES // max(len(self.embeddings), 1), 1, 1024))
        # the gallery's half of the distance, once: per query only the product with the gallery is left
        g = self.embeddings
        self._unit = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12) if metric == "cosine" else None
        self._squared_norms = (g * g).sum(1)[None, :] if metric == "euclidean" else None

    def __len__(self) -> int:
        return len(self.embeddings)

    def distances(self, queries: torch.Tensor) -> torch.Tensor:
        """``(q, N)`` distances, the same arithmetic as :func:`evaluation.knn.pairwise_distances`."""
        if self.metric == "cosine":
            q = queries / queries.norm(dim=1, keepdim=True).clamp_min(1e-12)
            return 1 - q @ self._unit.T
        squared = (queries * queries).sum(1, keepdim=True) - 2 * queries @ self.embeddings.T + self._squared_norms
        return squared.clamp_min(0).sqrt()

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = torch.as_tensor(np.asarray(queries, np.float32))
        k = min(k, len(self.embeddings))
        distances = np.empty((len(queries), k), np.float32)
        indices = np.empty((len(queries), k), np.int64)
        for start in range(0, len(queries), self.block):
            d = self.distances(queries[start:start + self.block])  # (q, N)
            values, where = d.topk(k, dim=1, largest=False)  # sorted, nearest first
            distances[start:start + len(d)], indices[start:start + len(d)] = values.numpy(), where.numpy()
        return distances, indices


def _faiss():
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is in requirements.txt
        raise UsageError("approximate indexes need faiss-cpu (pip install -r requirements.txt)") from None
    return faiss


class FaissIndex:
    """An approximate index (``hnsw`` or ``ivfpq``) over a gallery's rows, in the gallery's metric.

    faiss works on squared L2 (euclidean) or inner products of unit vectors (cosine); results
    are turned into the project's distances. ``rows[i]`` is the gallery row of faiss vector ``i``
    (-1 once removed), so a gallery can lose rows without rebuilding the graph.
    """

    def __init__(self, kind: str, metric: str, index, rows: np.ndarray, vectors: np.ndarray | None = None):
        self.kind, self.metric, self.index = kind, metric, index
        self.rows = rows
        self.vectors = vectors          # ivfpq: the exact vectors, for re-ranking (the gallery's own)
        self.search_effort = HNSW_SEARCH_EFFORT  # hnsw: efSearch floor

    @property
    def rows(self) -> np.ndarray:
        return self._rows

    @rows.setter
    def rows(self, rows: np.ndarray) -> None:
        # the live count is kept, not recounted per query: at 10⁶ rows a recount cost more than the graph search
        self._rows = np.asarray(rows, np.int64)
        self._live = int((self._rows >= 0).sum())

    # ----------------------------------------------------------------- building
    @classmethod
    def build(cls, embeddings: np.ndarray, kind: str, metric: str = "euclidean", progress: bool = False,
              seed: int = 0) -> FaissIndex:
        """Build over ``embeddings`` (row ``i`` = gallery row ``i``), with a progress bar when asked."""
        _check_metric(metric)
        faiss = _faiss()
        vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
        n, dim = vectors.shape
        space = _unit(vectors) if metric == "cosine" else vectors
        faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, HNSW_NEIGHBOURS, faiss_metric)
            index.hnsw.efConstruction = HNSW_BUILD_EFFORT
        elif kind == "ivfpq":
            # k-means wants ~39+ training points per centroid, for the lists and for each code book
            lists = int(np.clip(4 * np.sqrt(n), 1, max(n // 39, 1)))
            bits = 8 if n >= 256 * 39 else 6 if n >= 64 * 39 else 4
            subquantizers = next(m for m in (dim // 4, dim // 2, dim) if m >= 1 and dim % m == 0)
            quantizer = faiss.IndexFlat(dim, faiss_metric)
            index = faiss.IndexIVFPQ(quantizer, dim, lists, subquantizers, bits, faiss_metric)
            rng = np.random.default_rng(seed)
            sample = space[rng.choice(n, size=min(n, max(64 * lists, 64 * 2 ** bits)), replace=False)]
            faiss.omp_set_num_threads(faiss.omp_get_max_threads())
            index.train(sample)
            index.nprobe = min(lists, max(IVF_PROBES, lists // IVF_PROBE_SHARE))
        else:
            raise UsageError(f"unknown approximate index {kind!r}; choose hnsw or ivfpq")
        built = cls(kind, metric, index, np.zeros(0, np.int64), vectors if kind == "ivfpq" else None)
        built._append(space, np.arange(n), progress)
        return built

    def _append(self, space: np.ndarray, rows: np.ndarray, progress: bool) -> None:
        with tqdm(total=len(space), desc=f"building {self.kind} index", unit="vector", disable=not progress) as bar:
            for start in range(0, len(space), _ADD_CHUNK):
                chunk = space[start:start + _ADD_CHUNK]
                self.index.add(chunk)
                bar.update(len(chunk))
        self.rows = np.concatenate([self.rows, np.asarray(rows, np.int64)])

    def __len__(self) -> int:
        return self._live

    @property
    def deleted_share(self) -> float:
        return float((self.rows < 0).mean()) if len(self.rows) else 0.0

    # ---------------------------------------------------------------- changing
    def add(self, embeddings: np.ndarray, first_row: int) -> None:
        """Append vectors as gallery rows ``first_row, first_row + 1, ...`` (enrolment, no rebuild)."""
        vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
        self._append(_unit(vectors) if self.metric == "cosine" else vectors,
                     np.arange(first_row, first_row + len(vectors)), progress=False)
        if self.vectors is not None:
            self.vectors = np.concatenate([self.vectors, vectors])

    def keep_rows(self, kept: np.ndarray) -> None:
        """The gallery kept only rows ``kept`` (sorted, old numbering): renumber, mark the others deleted."""
        kept = np.asarray(kept, np.int64)
        new_number = np.full(max(int(self.rows.max(initial=-1)) + 1, 1), -1, np.int64)
        new_number[kept] = np.arange(len(kept))
        self.rows = np.where(self.rows >= 0, new_number[np.maximum(self.rows, 0)], -1)

    # ---------------------------------------------------------------- querying
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        live = len(self)
        k = min(k, live)
        space = _unit(queries) if self.metric == "cosine" else queries
        deleted = len(self.rows) - live
        wanted = k + min(deleted, 4 * k + 16)  # room for deleted rows among the nearest
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = max(self.search_effort, wanted + wanted // 2)
            scores, ids = self.index.search(space, wanted)
        else:
            scores, ids = self.index.search(space, wanted * IVF_RERANK)
        rows = np.where(ids >= 0, self.rows[np.maximum(ids, 0)], -1)
        if self.kind == "ivfpq":
            return self._rerank(queries, ids, rows, k)
        distances = self._distances(scores)
        return _first_live(distances, rows, k)

    def _distances(self, scores: np.ndarray) -> np.ndarray:
        """faiss scores → the project's distances (as :func:`evaluation.knn.pairwise_distances`)."""
        if self.metric == "cosine":
            return (1.0 - scores).astype(np.float32)
        return np.sqrt(np.maximum(scores, 0)).astype(np.float32)

    def _rerank(self, queries, ids, rows, k):
        """Exact distances of the approximate candidates (as :class:`ExactIndex` computes them), then the ``k`` nearest."""
        found = rows >= 0
        vectors = self.vectors[np.where(found, ids, 0)]                      # (Q, C, D)
        if self.metric == "cosine":
            cosine = np.einsum("qd,qcd->qc", _unit(queries), _unit(vectors.reshape(-1, vectors.shape[-1])).reshape(
                vectors.shape))
            distances = 1.0 - cosine
        else:
            squared = ((queries * queries).sum(1)[:, None] - 2 * np.einsum("qd,qcd->qc", queries, vectors)
                       + (vectors * vectors).sum(2))
            distances = np.sqrt(np.maximum(squared, 0))
        distances = np.where(found, distances, np.inf).astype(np.float32)
        order = np.argsort(distances, axis=1, kind="stable")
        return _first_live(np.take_along_axis(distances, order, 1), np.take_along_axis(rows, order, 1), k)

    # ------------------------------------------------------------------- files
    def to_arrays(self, checksum: str) -> dict:
        faiss = _faiss()
        arrays = {"format": np.asarray(INDEX_FORMAT), "kind": np.asarray(self.kind), "metric": np.asarray(self.metric),
                  "gallery_checksum": np.asarray(checksum), "rows": self.rows,
                  "index": faiss.serialize_index(self.index)}
        return arrays

    def save(self, path: str | os.PathLike, checksum: str) -> Path:
        path = Path(path)
        with atomic_write(path, "wb") as handle:
            np.savez(handle, **self.to_arrays(checksum))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, embeddings: np.ndarray, metric: str) -> FaissIndex:
        """Load an index saved beside a gallery, refusing one that was not built from these embeddings."""
        faiss = _faiss()
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
            kind, saved_metric = str(arrays["kind"]), str(arrays["metric"])
            checksum, rows = str(arrays["gallery_checksum"]), arrays["rows"].astype(np.int64)
            blob = arrays["index"]
        except FileNotFoundError:
            raise DataError(f"{path}: index file not found") from None
        except Exception as error:  # zip, npz-key and dtype errors all mean "not our index file"
            raise DataError(f"{path}: not a readable index file ({type(error).__name__}: {error})") from None
        if int(arrays.get("format", 0)) > INDEX_FORMAT:
            raise DataError(f"{path}: index format {int(arrays['format'])} is newer than this code ({INDEX_FORMAT})")
        if checksum != embeddings_checksum(embeddings):
            raise DataError(f"{path}: index was built from other embeddings than its gallery (checksum mismatch); "
                            "rebuild it (predict.py --index hnsw --rebuild-index)")
        if saved_metric != metric:
            raise DataError(f"{path}: index uses the {saved_metric} metric, the gallery {metric}")
        try:
            index = faiss.deserialize_index(np.ascontiguousarray(blob, dtype=np.uint8))
        except Exception as error:  # faiss raises RuntimeError on damaged bytes
            raise DataError(f"{path}: damaged index ({type(error).__name__}: {str(error).splitlines()[0]})") from None
        if index.ntotal != len(rows) or int((rows >= 0).sum()) != len(embeddings):
            raise DataError(f"{path}: index holds {index.ntotal} vectors ({int((rows >= 0).sum())} live) for a "
                            f"gallery of {len(embeddings)}")
        return cls(kind, metric, index, rows, np.ascontiguousarray(embeddings, np.float32) if kind == "ivfpq" else None)


def _first_live(distances: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` live (row >= 0) answers of each query, in order; padded with inf/-1."""
    live = rows >= 0
    order = np.argsort(~live, axis=1, kind="stable")[:, :k]
    d, r = np.take_along_axis(distances, order, 1), np.take_along_axis(rows, order, 1)
    missing = np.take_along_axis(~live, order, 1)
    d[missing], r[missing] = np.inf, -1
    if d.shape[1] < k:
        pad = k - d.shape[1]
        d = np.concatenate([d, np.full((len(d), pad), np.inf, np.float32)], 1)
        r = np.concatenate([r, np.full((len(r), pad), -1, np.int64)], 1)
    return d.astype(np.float32), r


def index_path(gallery_path: str | os.PathLike, kind: str) -> Path:
    """Where a gallery's ``kind`` index lives: ``gallery.npz`` → ``gallery.hnsw.npz``."""
    path = Path(gallery_path)
    return path.with_name(f"{path.stem}.{kind}.npz")


def choose_kind(kind: str, size: int) -> str:
    if kind not in INDEX_KINDS:
        raise UsageError(f"--index must be one of {', '.join(INDEX_KINDS)}, got {kind!r}")
    if kind == "auto":
        return "exact" if size < AUTO_EXACT_BELOW else "hnsw"
    return kind


def recall_at(approximate: np.ndarray, exact: np.ndarray, ks=(1, 5)) -> dict[str, float]:
    """Recall@k of an approximate search against exact search on the same queries (row ids)."""
    out = {}
    for k in ks:
        hits = [len(set(a[:k]) & set(e[:k])) / max(len(set(e[:k]) - {-1}), 1) for a, e in zip(approximate, exact)]
        out[f"recall_at_{k}"] = float(np.mean(hits)) if hits else float("nan")
    return out
