"""Galleries: labelled embeddings that a new clip is recognised against.

A gallery is built once (embed every clip of a dataset), saved as a plain ``.npz``
(loadable with ``allow_pickle=False``), extended with new glosses from a few clips
without retraining, and queried for the nearest glosses.

Search goes through a :class:`SearchIndex`: anything with ``search(queries, k)``
returning the ``k`` nearest gallery rows. :mod:`evaluation.search` has the exact index
(batched matrix products) and faiss' HNSW and IVF-PQ, chosen by :meth:`Gallery.use_index`;
enrolment appends to an approximate index and removing glosses marks its rows deleted, so
neither rebuilds it. Ranking
*distinct* glosses only needs those neighbour lists, so it works with either; the rule
is :mod:`evaluation.ranking`'s, applied to the glosses a list holds (:func:`distinct_top_k`).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from datasets.atomic import atomic_write
from datasets.errors import DataError
from datasets.sequences import SequenceSet, string_column
from evaluation.search import (REBUILD_DELETED_SHARE, ExactIndex, FaissIndex, choose_kind,  # noqa: F401
                               embeddings_checksum, index_path)

GALLERY_FORMAT = 1
METRICS = ("euclidean", "cosine")
_REQUIRED = ("embeddings", "labels", "label_names")


class SearchIndex(Protocol):
    """The k nearest gallery rows of each query: ``(distances (Q, k), indices (Q, k))``, nearest first."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class Matches:
    """Answers for a batch of queries: the ``k`` nearest distinct glosses and the nearest samples."""

    glosses: np.ndarray             # (Q, k) int, index into label_names; -1 = fewer glosses exist
    gloss_distances: np.ndarray     # (Q, k) float32; inf where glosses is -1
    neighbours: np.ndarray          # (Q, n) int, gallery rows, nearest first
    neighbour_distances: np.ndarray  # (Q, n) float32
    label_names: list[str]

    def top(self, query: int) -> list[tuple[str, float]]:
        """``[(gloss, distance), ...]`` for one query, best first."""
        return [(self.label_names[g], float(d)) for g, d in zip(self.glosses[query], self.gloss_distances[query])
                if g >= 0]


def distinct_top_k(neighbour_labels: np.ndarray, neighbour_distances: np.ndarray, k: int):
    """The ``k`` nearest distinct labels of each row of neighbour lists (a search's answer).

    This is the index-based form of :mod:`evaluation.ranking`'s rule, for searches that
    return neighbour lists rather than a full distance matrix: a label's distance is that
    of its nearest sample in the list, and labels are then ordered by
    :func:`evaluation.ranking.order_glosses` (nearest first, ties to the lower label).
    On a full-length exact neighbour list that is the per-gloss minimum, so the ranking
    equals :func:`evaluation.ranking.rank_by_nearest` on the distance matrix; on a shorter
    list only glosses met in it can be ranked, which is why :meth:`Gallery.query` widens
    the list until ``k`` glosses are found.

    Returns ``(labels (Q, k), distances (Q, k) float32, found (Q,))``, ``found`` being the
    number of distinct labels in each list; ``-1`` / ``inf`` pad rows with fewer labels.
    """
    from evaluation.ranking import order_glosses
    labels = np.asarray(neighbour_labels)
    distances = np.asarray(neighbour_distances, np.float32)
    q, n = labels.shape
    order = np.lexsort((distances, labels), axis=1)              # groups equal labels, nearest first
    grouped = np.take_along_axis(labels, order, 1)
    first_grouped = np.ones((q, n), bool)
    first_grouped[:, 1:] = grouped[:, 1:] != grouped[:, :-1]
    first = np.zeros((q, n), bool)
    np.put_along_axis(first, order, first_grouped, 1)
    first &= labels >= 0
    candidates = torch.from_numpy(np.where(first, labels, -1).astype(np.int64))
    ids, values = order_glosses(torch.from_numpy(distances), k, candidates)
    return ids.numpy(), values.numpy(), first.sum(1)


@dataclass
class Gallery:
    """Embeddings ``(N, D)`` with their glosses, videos and signers."""

    embeddings: np.ndarray
    labels: np.ndarray
    label_names: list[str]
    video_ids: np.ndarray = None
    signer_ids: np.ndarray = None
    metric: str = "euclidean"
    model_digest: str = ""           # fingerprint of the weights that made the embeddings ("" = unknown)
    _index: SearchIndex | None = field(default=None, init=False, repr=False, compare=False)
    _glosses_present: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self):
        self.embeddings = np.ascontiguousarray(self.embeddings, dtype=np.float32)
        if self.embeddings.ndim != 2:
            raise ValueError(f"gallery embeddings must be (N, D), got shape {self.embeddings.shape}")
        n = len(self.embeddings)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.label_names = [str(x) for x in self.label_names]
        self.video_ids = string_column(self.video_ids, n, "gallery video_ids", of="embeddings")
        self.signer_ids = string_column(self.signer_ids, n, "gallery signer_ids", of="embeddings")
        if self.labels.shape != (n,):
            raise ValueError(f"gallery has {len(self.labels)} labels for {n} embeddings")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.label_names)):
            raise ValueError("a gallery label does not index label_names")
        if len(set(self.label_names)) != len(self.label_names):
            raise ValueError("gallery label_names contain duplicates")
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; choose from {', '.join(METRICS)}")
        if not np.isfinite(self.embeddings).all():
            raise ValueError("gallery embeddings contain NaN or infinite values")
        # counted once: per query it would cost a sort of every label (100 ms at 10^6 clips)
        self._glosses_present = int(np.count_nonzero(np.bincount(self.labels, minlength=1)))

    # ------------------------------------------------------------------ building
    @classmethod
    def from_sequences(cls, embeddings: np.ndarray, sequences: SequenceSet, metric: str = "euclidean",
                       model_digest: str = "") -> Gallery:
        """A gallery whose vocabulary is the glosses present in ``sequences`` (in their order)."""
        present = np.unique(sequences.labels)
        remap = np.full(max(len(sequences.label_names), 1), -1, np.int64)
        remap[present] = np.arange(len(present))
        return cls(embeddings, remap[sequences.labels], [sequences.label_names[i] for i in present],
                   sequences.video_ids, sequences.signer_ids, metric, model_digest)

    def __len__(self) -> int:
        return len(self.embeddings)

    @property
    def dim(self) -> int:
        return self.embeddings.shape[1]

    @property
    def signers_known(self) -> bool:
        return len(self) > 0 and bool((self.signer_ids != "").all())

    def extend(self, embeddings: np.ndarray, glosses: Sequence[str], video_ids=None, signer_ids=None) -> Gallery:
        """A new gallery with more samples; unseen gloss names join the vocabulary (no retraining)."""
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.ndim != 2 or (len(self) and embeddings.shape[1] != self.dim):
            raise ValueError(f"new embeddings must be (n, {self.dim}), got shape {embeddings.shape}")
        glosses = [str(g) for g in glosses]
        if len(glosses) != len(embeddings):
            raise ValueError(f"{len(glosses)} glosses for {len(embeddings)} new embeddings")
        names = list(self.label_names) + [g for g in dict.fromkeys(glosses) if g not in set(self.label_names)]
        position = {name: i for i, name in enumerate(names)}
        new_video_ids = string_column(video_ids, len(glosses), "gallery video_ids", of="embeddings")
        new_signer_ids = string_column(signer_ids, len(glosses), "gallery signer_ids", of="embeddings")
        extended = Gallery(
            np.concatenate([self.embeddings.reshape(-1, embeddings.shape[1]), embeddings]),
            np.concatenate([self.labels, np.asarray([position[g] for g in glosses], np.int64)]), names,
            np.concatenate([self.video_ids, new_video_ids]), np.concatenate([self.signer_ids, new_signer_ids]),
            self.metric, self.model_digest)
        if isinstance(self._index, FaissIndex):  # enrolment appends to the graph: no rebuild
            self._index.add(embeddings, first_row=len(self))
            extended._index, self._index = self._index, None  # the index now belongs to the new gallery
        return extended

    def without_glosses(self, glosses: Sequence[str]) -> Gallery:
        """A new gallery without every clip of ``glosses`` (they leave the vocabulary too).

        An approximate index follows without a rebuild (its rows are marked deleted) until a
        quarter of it is deleted; then it is rebuilt.
        """
        unknown = [g for g in glosses if g not in self.label_names]
        if unknown:
            raise DataError(f"not in the gallery: {', '.join(map(repr, unknown))}")
        dropped = {self.label_names.index(g) for g in glosses}
        kept = np.flatnonzero(~np.isin(self.labels, list(dropped)))
        names = [n for i, n in enumerate(self.label_names) if i not in dropped]
        renumber = np.cumsum([i not in dropped for i in range(len(self.label_names))]) - 1
        smaller = Gallery(self.embeddings[kept], renumber[self.labels[kept]], names, self.video_ids[kept],
                          self.signer_ids[kept], self.metric, self.model_digest)
        if isinstance(self._index, FaissIndex):
            index, self._index = self._index, None
            index.keep_rows(kept)
            smaller._index = index if index.deleted_share <= REBUILD_DELETED_SHARE else FaissIndex.build(
                smaller.embeddings, index.kind, smaller.metric)
        return smaller

    def subset(self, indices) -> Gallery:
        """Rows ``indices`` (the vocabulary is kept, so labels stay comparable)."""
        indices = np.asarray(indices)
        return Gallery(self.embeddings[indices], self.labels[indices], list(self.label_names),
                       self.video_ids[indices], self.signer_ids[indices], self.metric, self.model_digest)

    # -------------------------------------------------------------------- search
    def set_index(self, index: SearchIndex) -> None:
        """Search with ``index`` (built over ``self.embeddings``, same row order) from now on."""
        self._index = index

    def use_index(self, kind: str = "auto", saved_beside: str | os.PathLike | None = None,
                  progress: bool = False, rebuild: bool = False) -> str:
        """Search with a ``kind`` index (``auto``: exact below a size, HNSW above); returns the kind used.

        With ``saved_beside`` (the gallery's file), an approximate index saved next to it is
        loaded when it matches these embeddings (a mismatch is an error naming the file), or
        built (with a progress bar when asked) and saved there for the next run.
        """
        kind = choose_kind(kind, len(self))
        if kind == "exact":
            self._index = ExactIndex(self.embeddings, self.metric)
            return kind
        path = index_path(saved_beside, kind) if saved_beside is not None else None
        if path is not None and path.is_file() and not rebuild:
            self._index = FaissIndex.load(path, self.embeddings, self.metric)
            return kind
        self._index = FaissIndex.build(self.embeddings, kind, self.metric, progress=progress)
        if path is not None:
            try:
                self._index.save(path, embeddings_checksum(self.embeddings))
            except OSError as error:  # a read-only gallery folder: the index is rebuilt next time
                import logging
                logging.getLogger(__name__).warning("could not save the index beside %s (%s)", saved_beside, error)
        return kind

    @property
    def index(self) -> SearchIndex:
        if self._index is None:
            self._index = ExactIndex(self.embeddings, self.metric)
        return self._index

    def query(self, queries: np.ndarray, k: int = 5, neighbours: int = 0) -> Matches:
        """The ``k`` nearest distinct glosses (and ``neighbours`` nearest samples) of each query."""
        queries = np.asarray(queries, np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must be (Q, {self.dim}) to match the gallery, got shape {queries.shape}")
        n_total = len(self)
        if n_total == 0:
            raise ValueError("the gallery is empty")
        reachable = min(k, self._glosses_present)
        n = min(n_total, max(8 * k, neighbours, 32))
        while True:
            distances, indices = self.index.search(queries, n)
            labels = np.where(indices >= 0, self.labels[np.maximum(indices, 0)], -1)  # -1: fewer answers
            glosses, gloss_distances, found = distinct_top_k(labels, distances, k)
            if n >= n_total or (found >= reachable).all():
                break
            n = min(n_total, 4 * n)  # some query's nearest samples were all one gloss: look further
        return Matches(glosses, gloss_distances, indices[:, :neighbours], distances[:, :neighbours],
                       list(self.label_names))

    # ---------------------------------------------------------------------- files
    def to_arrays(self) -> dict:
        arrays = {
            "format": np.asarray(GALLERY_FORMAT, np.int64),
            "embeddings": self.embeddings, "labels": self.labels,
            "label_names": np.asarray(self.label_names, dtype=str), "video_ids": self.video_ids,
            "metric": np.asarray(self.metric, dtype=str), "model_digest": np.asarray(self.model_digest, dtype=str),
        }
        if self.signers_known:
            arrays["signer_ids"] = self.signer_ids
        return arrays

    def save(self, path: str | os.PathLike) -> Path:
        """Write an ``.npz`` atomically (plain arrays only: no pickles), and its approximate index beside it."""
        path = Path(path)
        with atomic_write(path, "wb") as handle:
            np.savez(handle, **self.to_arrays())
        if isinstance(self._index, FaissIndex):
            self._index.save(index_path(path, self._index.kind), embeddings_checksum(self.embeddings))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Gallery:
        """An ``.npz`` saved by :meth:`save`, or a personal dictionary ``.json`` exported by the web demo."""
        path = Path(path)
        if path.suffix.lower() == ".json":
            return load_personal_dictionary(path)
        try:
            with path.open("rb") as handle:
                magic = handle.read(4)
            if magic != b"PK\x03\x04":  # an .npz is a zip archive; anything else is not a gallery
                empty = " (empty file)" if not magic else ""
                raise DataError(f"{path}: not an .npz gallery file{empty}")
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise DataError(f"{path}: gallery file not found") from None
        except IsADirectoryError:
            raise DataError(f"{path}: is a folder, not a gallery file") from None
        except DataError:
            raise
        except ValueError as error:
            reason = "holds Python objects (pickles are refused)" if "pickle" in str(error) else str(error)
            raise DataError(f"{path}: not a gallery ({reason})") from None
        except (OSError, EOFError) as error:
            raise DataError(f"{path}: not a readable .npz gallery ({error})") from None
        except Exception as error:  # noqa: BLE001  (zipfile.BadZipFile and friends: any failure means "not a gallery")
            raise DataError(f"{path}: not a readable .npz gallery ({type(error).__name__}: {error})") from None
        missing = [key for key in _REQUIRED if key not in arrays]
        if missing:
            raise DataError(f"{path}: not a gallery (missing {', '.join(missing)})")
        if "format" in arrays and int(arrays["format"]) > GALLERY_FORMAT:
            raise DataError(f"{path}: gallery format {int(arrays['format'])} is newer than this code "
                            f"({GALLERY_FORMAT})")
        try:
            return cls(arrays["embeddings"], arrays["labels"], list(arrays["label_names"].reshape(-1)),
                       arrays.get("video_ids"), arrays.get("signer_ids"),
                       str(arrays["metric"]) if "metric" in arrays else "euclidean",
                       str(arrays["model_digest"]) if "model_digest" in arrays else "")
        except ValueError as error:
            raise DataError(f"{path}: invalid gallery ({error})") from None


def build_gallery(embedder, sequences: SequenceSet, batch_size: int = 128, progress: bool = False) -> Gallery:
    """Embed every sample of ``sequences`` with an :class:`evaluation.inference.Embedder`."""
    embeddings = embedder.embed(sequences, batch_size, progress, desc="gallery")
    return Gallery.from_sequences(embeddings, sequences, embedder.metric, embedder.digest)


def enrol(gallery: Gallery, embedder, sequences: SequenceSet, batch_size: int = 128) -> Gallery:
    """Add the clips of ``sequences`` (new or known glosses) to ``gallery``, without retraining."""
    if gallery.model_digest and embedder.digest and gallery.model_digest != embedder.digest:
        raise DataError(f"the gallery was built with another model ({gallery.model_digest}) than {embedder.source} "
                        f"({embedder.digest}); embeddings of different models cannot be compared")
    embeddings = embedder.embed(sequences, batch_size)
    return gallery.extend(embeddings, [sequences.label_names[i] for i in sequences.labels],
                          sequences.video_ids, sequences.signer_ids)


def compare_with_exact(embeddings: np.ndarray, labels: np.ndarray, queries: np.ndarray, query_labels: np.ndarray,
                       metric: str, kind: str, same_set: bool, neighbours: int = 50, ks=(1, 5)) -> dict:
    """How an approximate index answers the same queries as exact search.

    Both indexes return ``neighbours`` nearest rows per query (a same-set query drops its own
    row first); from those lists come recall@k of the rows (against exact) and kNN top-k of
    the distinct glosses (:func:`distinct_top_k`, the gallery's own rule) for each index.
    """
    import time
    started = time.perf_counter()
    approximate = FaissIndex.build(embeddings, kind, metric)
    build_seconds = time.perf_counter() - started
    exact = ExactIndex(embeddings, metric)
    labels, query_labels = np.asarray(labels), np.asarray(query_labels)
    out = {"index": kind, "queries": len(queries), "gallery": len(embeddings), "neighbours": neighbours,
           "build_seconds": round(build_seconds, 3)}
    lists = {}
    for name, index in (("exact", exact), (kind, approximate)):
        started = time.perf_counter()
        distances, rows = index.search(queries, neighbours + int(same_set))
        out[f"{name}_search_seconds"] = round(time.perf_counter() - started, 3)
        if same_set:  # leave the query itself out, keeping the order of the rest
            own = rows == np.arange(len(queries))[:, None]
            keep = np.argsort(own, axis=1, kind="stable")[:, :neighbours]
            distances, rows = np.take_along_axis(distances, keep, 1), np.take_along_axis(rows, keep, 1)
        neighbour_labels = np.where(rows >= 0, labels[np.maximum(rows, 0)], -1)
        glosses, _, _ = distinct_top_k(neighbour_labels, distances, max(ks))
        for k in ks:
            out[f"{name}_knn_top{k}"] = float((glosses[:, :k] == query_labels[:, None]).any(1).mean())
        lists[name] = rows
    from evaluation.search import recall_at
    out.update(recall_at(lists[kind], lists["exact"], ks))
    return out


# ------------------------------------------------------------ several gallery files
def load_personal_dictionary(path: str | os.PathLike) -> Gallery:
    """The embeddings of a web demo export (:mod:`datasets.personal_dictionary`) as a gallery."""
    from datasets.personal_dictionary import read_dictionary
    own = read_dictionary(path)
    try:
        return Gallery(own.embeddings, own.labels(), own.label_names(), own.video_ids, own.signer_ids,
                       own.metric, own.model_digest)
    except ValueError as error:
        raise DataError(f"{path}: invalid personal dictionary ({error})") from None


def merge_galleries(galleries: Sequence[Gallery], sources: Sequence[str]) -> Gallery:
    """One gallery from several (e.g. a built-in ``.npz`` plus a personal dictionary ``.json``).

    Embeddings are only comparable when one model made them with one distance, so the
    files must agree on dimension, metric and model digest (an unknown digest, ``""``,
    agrees with any). Glosses are merged by name: a gloss in two files is one gloss, its
    distance that of its nearest clip in either, exactly as the web page ranks its
    built-in and own signs together.
    """
    first, first_source = galleries[0], sources[0]
    digest = first.model_digest
    digest_source = first_source
    for gallery, source in zip(galleries[1:], sources[1:]):
        if gallery.dim != first.dim:
            raise DataError(f"{source}: gallery embeddings have {gallery.dim} dimensions but {first_source} has "
                            f"{first.dim}; galleries of different models cannot be merged")
        if gallery.metric != first.metric:
            raise DataError(f"{source}: gallery uses {gallery.metric} distance but {first_source} uses {first.metric}; "
                            f"galleries with different distances cannot be merged")
        if gallery.model_digest and digest and gallery.model_digest != digest:
            raise DataError(f"{source}: gallery was built with model {gallery.model_digest} but {digest_source} with "
                            f"model {digest}; galleries of different models cannot be merged")
        digest, digest_source = digest or gallery.model_digest, digest_source if digest else source
    merged = first
    for gallery in galleries[1:]:
        merged = merged.extend(gallery.embeddings, [gallery.label_names[i] for i in gallery.labels],
                               gallery.video_ids, gallery.signer_ids)
    if merged is not first:
        merged.model_digest = digest
    return merged


def load_galleries(paths: Sequence[str | os.PathLike]) -> Gallery:
    """:meth:`Gallery.load` each file and :func:`merge_galleries` them (one file: that gallery)."""
    paths = [str(p) for p in paths]
    return merge_galleries([Gallery.load(p) for p in paths], paths)
