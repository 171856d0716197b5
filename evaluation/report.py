"""Evaluation protocols over embeddings, and the report ``evaluate.py`` prints and saves.

Protocols (each is a mask of which gallery samples a query may use; glosses are ranked and
hits counted by :mod:`evaluation.ranking`):

* ``standard``: every gallery sample; when gallery and queries are the same set, a query
  leaves itself (and any sample of the same video) out.
* ``cross_signer``: additionally, no sample of the query's own signer. This is the figure
  that says whether a sign is recognised from someone the model never saw; on small real
  sets, repetitions by the same person make the standard figure meaningless.
* ``few_shot_<k>``: the gallery is reduced to ``k`` random samples per gloss (enrolment),
  averaged over several seeded draws; with a gallery from another dataset or vocabulary
  than training, this is the zero-shot protocol. Same-set queries exclude enrolled clips.

Accuracy is reported over the queries a protocol can answer at all (their gloss has at
least one allowed gallery sample: a gloss signed by one person has no cross-signer
answer) and, suffixed ``_all``, over every query.

Queries are evaluated in blocks (:mod:`evaluation.blocks`, ``block_size`` queries at a
time, automatic by default): distances and exclusion masks exist for one block at a time,
built from the id arrays (:mod:`evaluation.exclusions`), so memory grows with the
gallery, not with gallery x queries. The figures do not depend on the block size.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from datasets.sequences import SequenceSet
from evaluation.blocks import checked_block_size, query_blocks
from evaluation.exclusions import Exclusions
from evaluation.knn import ClassSums, average_precision_at_r, masked_centroid_distances, silhouette
from evaluation.ranking import KS, Ranking, rank_by_nearest, rank_glosses

Mask = Exclusions | torch.Tensor   # a rule built per block, or a full (Q, G) mask on a small set


@dataclass
class EmbeddedSet:
    """Embeddings with what is known about each sample (labels index ``label_names``)."""

    embeddings: np.ndarray
    labels: np.ndarray
    label_names: list[str]
    video_ids: np.ndarray
    signer_ids: np.ndarray

    @classmethod
    def from_sequences(cls, embeddings: np.ndarray, sequences: SequenceSet) -> EmbeddedSet:
        return cls(np.asarray(embeddings, np.float32), sequences.labels, list(sequences.label_names),
                   sequences.video_ids, sequences.signer_ids)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def signers_known(self) -> bool:
        return len(self) > 0 and bool((np.asarray(self.signer_ids) != "").all())

    def with_label_names(self, names: Sequence[str]) -> EmbeddedSet:
        position = {n: i for i, n in enumerate(names)}
        remap = np.asarray([position[n] for n in self.label_names], np.int64)
        return EmbeddedSet(self.embeddings, remap[self.labels] if len(self.labels) else self.labels,
                           list(names), self.video_ids, self.signer_ids)

    def subset(self, indices) -> EmbeddedSet:
        return EmbeddedSet(self.embeddings[indices], self.labels[indices], self.label_names,
                           self.video_ids[indices], self.signer_ids[indices])


def align(gallery: EmbeddedSet, queries: EmbeddedSet) -> tuple[EmbeddedSet, EmbeddedSet]:
    """Put both sets on one vocabulary, matched by gloss name (gallery glosses first)."""
    names = list(gallery.label_names) + [n for n in queries.label_names if n not in set(gallery.label_names)]
    return gallery.with_label_names(names), queries.with_label_names(names)


@dataclass
class ProtocolResult:
    """One protocol's figures, its per-gloss table and the arrays behind them."""

    name: str
    description: str
    metrics: dict
    per_gloss: list[dict] = field(default_factory=list)
    predictions: np.ndarray | None = None   # (Q, k) ranked gloss ids, -1 = no candidate
    eligible: np.ndarray | None = None      # (Q,) the query's gloss had an allowed gallery sample
    confusion: np.ndarray | None = None     # (C, C) counts true gloss -> top-1 gloss, answerable queries

    def to_json(self) -> dict:
        return {"description": self.description, **self.metrics, "per_gloss": self.per_gloss}


def per_gloss_table(labels: np.ndarray, predictions: np.ndarray, eligible: np.ndarray, label_names: list[str],
                    ks=KS) -> tuple[list[dict], np.ndarray]:
    """Accuracy per gloss and the gloss it is most often mistaken for (top-1), plus the confusion counts."""
    labels = np.asarray(labels)
    c = len(label_names)
    top1 = predictions[:, 0]
    counted = eligible & (top1 >= 0)
    confusion = np.bincount(labels[counted] * c + top1[counted], minlength=c * c).reshape(c, c)
    wrong = confusion.copy()
    np.fill_diagonal(wrong, 0)
    queries = np.bincount(labels, minlength=c)
    answerable = np.bincount(labels[eligible], minlength=c)
    hits = {k: np.bincount(labels[eligible], weights=(predictions[eligible, :k] == labels[eligible, None]).any(1),
                           minlength=c) for k in ks}
    rows = []
    for g in np.flatnonzero(queries):
        row = {"gloss": label_names[g], "queries": int(queries[g]), "answerable": int(answerable[g])}
        for k in ks:
            row[f"top{k}"] = float(hits[k][g] / answerable[g]) if answerable[g] else None
        confused = int(wrong[g].argmax())
        row["most_confused"] = label_names[confused] if wrong[g, confused] > 0 else None
        row["confused_count"] = int(wrong[g, confused])
        rows.append(row)
    return rows, confusion


def protocol(name: str, description: str, distances: torch.Tensor | None, gallery: EmbeddedSet,
             queries: EmbeddedSet, excluded: Mask | None, metric: str, ks=KS, details: bool = True, *,
             block_size: int | None = None) -> ProtocolResult:
    """kNN (distinct glosses), class-centroid and MAP@R figures for one gallery mask.

    ``distances=None`` computes them block by block (the evaluation's way); a full
    ``(Q, G)`` matrix is sliced instead.
    """
    c, k = len(gallery.label_names), max(ks)
    sums = ClassSums.of(gallery.embeddings, gallery.labels, c)
    knn_parts, centroid_parts, precision_parts = [], [], []
    for block in query_blocks(queries.embeddings, gallery.embeddings, metric, excluded, block_size, distances, c):
        labels = queries.labels[block.rows]
        knn_parts.append(rank_by_nearest(block.distances, gallery.labels, labels, c, block.excluded, k))
        centroids = masked_centroid_distances(queries.embeddings[block.rows], gallery.embeddings, gallery.labels, c,
                                              block.excluded, metric, sums)
        centroid_parts.append(rank_glosses(centroids, labels, k))
        if details:
            precision_parts.append(average_precision_at_r(block.distances, labels, gallery.labels, block.excluded)[0])
    knn, centroid = Ranking.concatenate(knn_parts), Ranking.concatenate(centroid_parts)
    centroid.eligible = knn.eligible    # the same queries: a centroid exists iff an allowed sample does
    metrics = {"queries": len(queries), "answerable_queries": int(knn.eligible.sum()),
               **knn.accuracy(ks, "knn"), **centroid.accuracy(ks, "centroid")}
    result = ProtocolResult(name, description, metrics, predictions=knn.predictions, eligible=knn.eligible)
    if details:
        precision = torch.cat(precision_parts)
        metrics["map_at_r"] = float(precision.mean()) if len(precision) else float("nan")
        result.per_gloss, result.confusion = per_gloss_table(queries.labels, knn.predictions, knn.eligible,
                                                             gallery.label_names, ks)
    return result


def enrolment_draw(labels: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``shots`` random samples per gloss (all of a gloss's samples when it has fewer)."""
    labels = np.asarray(labels)
    shuffled = rng.permutation(len(labels))
    grouped = shuffled[np.argsort(labels[shuffled], kind="stable")]        # glosses together, random within
    starts = np.searchsorted(labels[grouped], labels[grouped], side="left")
    rank = np.arange(len(grouped)) - starts
    return np.sort(grouped[rank < shots])


def _restricted(mask: Mask | None, rows: np.ndarray, columns: np.ndarray) -> Mask | None:
    """The exclusions between the queries ``rows`` and the gallery samples ``columns``."""
    if mask is None:
        return None
    if isinstance(mask, Exclusions):
        return mask.subset(rows, columns)
    return mask[torch.as_tensor(rows)][:, torch.as_tensor(columns)]


def few_shot(distances: torch.Tensor | None, gallery: EmbeddedSet, queries: EmbeddedSet, base: Mask | None,
             same: bool, shots: int, draws: int, seed: int, metric: str, ks=KS, cross_signer: Mask | None = None,
             *, block_size: int | None = None) -> list[ProtocolResult]:
    """``shots`` enrolled samples per gloss, averaged over ``draws`` seeded draws (mean and std).

    Each draw evaluates its queries against the enrolled subset only, block by block
    (``distances=None``) or by slicing a full matrix.
    """
    masks = {"": base}
    if cross_signer is not None:
        masks["_cross_signer"] = cross_signer
    runs: dict[str, list[dict]] = {suffix: [] for suffix in masks}
    for draw in range(draws):
        chosen = enrolment_draw(gallery.labels, shots, np.random.default_rng([seed, shots, draw]))
        rows = np.setdiff1d(np.arange(len(queries)), chosen) if same else np.arange(len(queries))
        enrolled, asked = gallery.subset(chosen), queries.subset(rows)
        sub = None if distances is None else distances[torch.as_tensor(rows)][:, torch.as_tensor(chosen)]
        for suffix, mask in masks.items():
            runs[suffix].append(protocol("", "", sub, enrolled, asked, _restricted(mask, rows, chosen), metric, ks,
                                         details=False, block_size=block_size).metrics)
    results = []
    for suffix, metrics in runs.items():
        summary = {"shots": shots, "draws": draws, "seed": seed}
        for key in metrics[0]:
            values = np.asarray([m[key] for m in metrics], np.float64)
            summary[key] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
            if key.startswith(("knn", "centroid")):
                summary[f"{key}_std"] = float(np.nanstd(values)) if np.isfinite(values).any() else float("nan")
        where = "other signers' " if suffix else ""
        results.append(ProtocolResult(
            f"few_shot_{shots}{suffix}", f"{shots}-shot enrolment from {where}samples, {draws} draws", summary))
    return results


@dataclass
class EvaluationResult:
    """Everything measured for one model on one gallery/query pair."""

    model: str
    label_names: list[str]
    protocols: dict[str, ProtocolResult]
    silhouette: dict

    def to_json(self) -> dict:
        return {"protocols": {name: p.to_json() for name, p in self.protocols.items()}, "silhouette": self.silhouette}


def exclusion_rules(gallery: EmbeddedSet, queries: EmbeddedSet, same: bool
                    ) -> tuple[Exclusions | None, Exclusions | None]:
    """(standard, cross-signer) exclusions as id rules: a query may not use a sample that shares
    its row (same set), its video (same set, every video id known) or, cross-signer, its signer."""
    base = None
    if same:
        rows = np.arange(len(queries))
        groups = [(rows, rows)]
        q_ids, g_ids = np.asarray(queries.video_ids), np.asarray(gallery.video_ids)
        if (q_ids != "").all() and (g_ids != "").all():
            groups.append((q_ids, g_ids))
        base = Exclusions.of(*groups)
    cross = None
    signers = set(np.asarray(gallery.signer_ids)) | set(np.asarray(queries.signer_ids))
    if gallery.signers_known and queries.signers_known and len(signers) > 1:
        cross = Exclusions.of((queries.signer_ids, gallery.signer_ids)) | base
    return base, cross


def exclusion_masks(gallery: EmbeddedSet, queries: EmbeddedSet, same: bool
                    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(standard, cross-signer) full ``(Q, G)`` masks, True = the query may not use that gallery sample.

    For small sets and tests; the evaluation keeps :func:`exclusion_rules` and builds masks per block.
    """
    return tuple(None if rule is None else rule.dense() for rule in exclusion_rules(gallery, queries, same))


STANDARD_ALL = "every gallery sample"
STANDARD_SAME = "every gallery sample except the query itself (same set)"
CROSS_SIGNER = "only other signers' samples (leave-one-signer-out)"


def _prepared(gallery: EmbeddedSet, queries: EmbeddedSet | None):
    """The common start of every evaluation: one vocabulary and the protocols' exclusion rules."""
    same = queries is None
    if same:
        queries = gallery
    else:
        gallery, queries = align(gallery, queries)
    base, cross = exclusion_rules(gallery, queries, same)
    return gallery, queries, same, base, cross


def evaluate_embeddings(gallery: EmbeddedSet, queries: EmbeddedSet | None = None, *, metric: str = "euclidean",
                        ks=KS, shots: Sequence[int] = (), draws: int = 5, seed: int = 0,
                        model: str = "model", block_size: int | None = None) -> EvaluationResult:
    """Every protocol for one model. ``queries=None`` means the gallery is also the query set.

    ``block_size`` queries are evaluated at a time (``None``: as many as keep a block's
    work near :data:`evaluation.blocks.DEFAULT_BLOCK_BYTES`); it changes memory, not figures.
    """
    block_size = checked_block_size(block_size)
    gallery, queries, same, base, cross = _prepared(gallery, queries)
    protocols = {}
    protocols["standard"] = protocol("standard", STANDARD_SAME if same else STANDARD_ALL, None, gallery,
                                     queries, base, metric, ks, block_size=block_size)
    if cross is not None:
        protocols["cross_signer"] = protocol("cross_signer", CROSS_SIGNER, None, gallery, queries, cross,
                                             metric, ks, block_size=block_size)
    for k in shots:
        for result in few_shot(None, gallery, queries, base, same, int(k), draws, seed, metric, ks, cross,
                               block_size=block_size):
            protocols[result.name] = result
    scores = {"queries": silhouette(queries.embeddings, queries.labels, metric)}
    if not same:
        scores["gallery"] = silhouette(gallery.embeddings, gallery.labels, metric)
    return EvaluationResult(model, list(gallery.label_names), protocols, scores)


def knn_figures(gallery: EmbeddedSet, queries: EmbeddedSet | None = None, *, metric: str = "euclidean",
                ks=KS, block_size: int | None = None) -> dict[str, dict]:
    """The kNN figures of :func:`evaluate_embeddings`'s ``standard`` and ``cross_signer`` protocols only.

    Same vocabulary, distances, masks and ranking as the full evaluation, hence the same
    numbers, without the centroid, MAP@R and per-gloss work: training logs these every
    evaluation epoch. ``{"standard": {...}, "cross_signer": {...}}``, the latter only when
    :func:`evaluate_embeddings` would report it; each holds ``queries``,
    ``answerable_queries``, ``knn_top{k}`` and ``knn_top{k}_all``. Evaluated in query
    blocks like :func:`evaluate_embeddings` (same ``block_size`` rule).
    """
    block_size = checked_block_size(block_size)
    gallery, queries, _, base, cross = _prepared(gallery, queries)
    c = len(gallery.label_names)
    figures = {}
    for name, excluded in (("standard", base), ("cross_signer", cross)):
        if name == "cross_signer" and cross is None:
            continue
        knn = Ranking.concatenate([
            rank_by_nearest(block.distances, gallery.labels, queries.labels[block.rows], c, block.excluded, max(ks))
            for block in query_blocks(queries.embeddings, gallery.embeddings, metric, excluded, block_size,
                                      num_glosses=c)])
        figures[name] = {"queries": len(queries), "answerable_queries": int(knn.eligible.sum()),
                         **knn.accuracy(ks, "knn")}
    return figures


# ----------------------------------------------------------------------------- text table
ROWS = (("kNN top-1", "knn_top1"), ("kNN top-5", "knn_top5"), ("centroid top-1", "centroid_top1"),
        ("centroid top-5", "centroid_top5"), ("MAP@R", "map_at_r"))


def _cell(metrics: dict, key: str) -> str:
    value = metrics.get(key)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    std = metrics.get(f"{key}_std")
    return f"{value:.3f}" + (f"±{std:.3f}" if std is not None and np.isfinite(std) else "")


def format_table(results: Sequence[EvaluationResult]) -> str:
    """Protocols as rows, models side by side (e.g. the model and its untrained baseline)."""
    header = ["protocol", "metric", *[r.model for r in results]]
    lines = []
    first = results[0]
    for name, proto in first.protocols.items():
        m = proto.metrics
        label = f"{name} ({m['answerable_queries']:.4g}/{m['queries']:.4g} answerable)"
        for title, key in ROWS:
            if key not in m:
                continue
            lines.append([label, title, *[_cell(r.protocols[name].metrics, key) if name in r.protocols else "-"
                                          for r in results]])
            label = ""
    for which in first.silhouette:
        lines.append([f"silhouette ({which})", "", *[_cell(r.silhouette, which) for r in results]])
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    def render(row):  # text columns left-aligned, numbers right-aligned
        return "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
    return "\n".join([render(header), render(["-" * w for w in widths]), *[render(row) for row in lines]])


def format_per_gloss(result: EvaluationResult, protocol_name: str) -> str:
    proto = result.protocols[protocol_name]
    header = ["gloss", "queries", "top-1", "top-5", "most confused with"]
    rows = [[r["gloss"], str(r["queries"]), "-" if r["top1"] is None else f"{r['top1']:.2f}",
             "-" if r["top5"] is None else f"{r['top5']:.2f}",
             f"{r['most_confused']} ({r['confused_count']})" if r["most_confused"] else ""]
            for r in sorted(proto.per_gloss, key=lambda r: (r["top1"] is None, r["top1"] or 0.0, r["gloss"]))]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in [header, *rows]]
    return f"per gloss, {result.model}, {protocol_name}:\n" + "\n".join(lines)
