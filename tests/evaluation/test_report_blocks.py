"""Evaluation in query blocks gives the figures of the one-matrix evaluation it replaced.

Three independent checks on seeded random sets built to exercise every rule (same-video
clips, glosses signed by one person, glosses with a single clip, query glosses missing
from the gallery, euclidean and cosine, few-shot draws):

* ``report_golden.json`` holds the figures the pre-block implementation (full ``(Q, G)``
  distance and mask matrices) printed for these sets, frozen with
  ``python tests/evaluation/test_report_blocks.py --freeze`` before the change;
* a straightforward per-query reference written here (loops, float64, no blocks);
* block sizes 1, 7 and "every query in one block" agree with each other.

Counts and accuracies must be equal; distances-derived figures (MAP@R) agree to 1e-6.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

if __name__ == "__main__":  # `python tests/evaluation/test_report_blocks.py --freeze` from anywhere
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from evaluation.ranking import KS  # noqa: E402
from evaluation.report import EmbeddedSet, enrolment_draw, evaluate_embeddings, knn_figures  # noqa: E402

GOLDEN = Path(__file__).with_name("data") / "report_golden.json"
SHOTS, DRAWS, SEED = (1, 2), 3, 5


def random_set(rng: np.random.Generator, n: int, glosses: int, signers: int, dim: int, prefix: str,
               names: list[str], signer_ids: bool = True) -> EmbeddedSet:
    """Clips clustered by gloss with a per-signer offset; a few videos hold two clips; gloss 0 by one signer."""
    labels = rng.integers(0, glosses, n)
    labels[: glosses // 2] = np.arange(glosses // 2)      # most glosses present
    labels[labels == glosses - 1] = 1
    labels[-1] = glosses - 1                               # the last gloss: a single clip
    signer = rng.integers(0, signers, n)
    signer[labels == 0] = 0                                # gloss 0: a single signer
    centres = np.random.default_rng(99).normal(size=(len(names), dim)) * 1.5
    offsets = np.random.default_rng(98).normal(size=(signers, dim)) * 0.7
    emb = centres[labels] + offsets[signer] + rng.normal(size=(n, dim))
    videos = np.asarray([f"{prefix}v{i}" for i in range(n)])
    videos[1::9] = videos[0::9][: len(videos[1::9])]       # some videos cut into two clips
    signer_names = np.asarray([f"s{s}" for s in signer]) if signer_ids else np.asarray([""] * n)
    return EmbeddedSet(emb.astype(np.float32), labels, list(names), videos, signer_names)


def cases() -> dict[str, tuple[EmbeddedSet, EmbeddedSet | None, str]]:
    """name -> (gallery, queries or None for same-set, metric)."""
    names = [f"g{i}" for i in range(9)]
    out = {}
    for metric in ("euclidean", "cosine"):
        rng = np.random.default_rng(1 if metric == "euclidean" else 2)
        out[f"same_{metric}"] = (random_set(rng, 83, 9, 4, 5, "a", names), None, metric)
        gallery = random_set(rng, 61, 8, 3, 5, "g", names[:8])
        queries = random_set(rng, 37, 9, 4, 5, "q", names)   # gloss g8: not in the gallery
        out[f"separate_{metric}"] = (gallery, queries, metric)
    rng = np.random.default_rng(3)
    out["same_no_signers"] = (random_set(rng, 40, 6, 3, 4, "n", names[:6], signer_ids=False), None, "euclidean")
    return out


def report(gallery, queries, metric, **kwargs) -> dict:
    """The evaluation as JSON plus the arrays behind it (predictions, eligibility, confusion)."""
    result = evaluate_embeddings(gallery, queries, metric=metric, shots=SHOTS, draws=DRAWS, seed=SEED, **kwargs)
    out = result.to_json()
    for name, proto in result.protocols.items():
        if proto.predictions is not None:
            out["protocols"][name]["predictions"] = proto.predictions.tolist()
            out["protocols"][name]["eligible"] = proto.eligible.tolist()
            out["protocols"][name]["confusion"] = proto.confusion.tolist()
    out["knn_figures"] = knn_figures(gallery, queries, metric=metric, **kwargs)
    return out


def assert_same(got, want, path="report"):
    """Equal structure and values: exact for ints, strings and lists of ids, 1e-6 for floats."""
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for key in want:
            assert_same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        if math.isnan(want):
            assert math.isnan(got), path
        else:
            assert got == pytest.approx(want, abs=1e-6), path
    else:
        assert got == want, path


# ----------------------------------------------------------------------------- reference
def reference_protocol(gallery: EmbeddedSet, queries: EmbeddedSet, excluded: np.ndarray, metric: str,
                       details: bool = True) -> dict:
    """The protocol's figures one query at a time, from the module docstrings' definitions."""
    c = len(gallery.label_names)
    q = queries.embeddings.astype(np.float64)
    g = gallery.embeddings.astype(np.float64)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        gn = g / np.linalg.norm(g, axis=1, keepdims=True)
        d = 1 - q @ gn.T
    else:
        d = np.linalg.norm(q[:, None] - g[None], axis=-1)
    knn_hits = {k: [] for k in KS}
    centroid_hits = {k: [] for k in KS}
    eligible, aps = [], []
    for i in range(len(q)):
        allowed = ~excluded[i]
        nearest, centre = {}, {}
        for gloss in range(c):
            members = allowed & (gallery.labels == gloss)
            if members.any():
                nearest[gloss] = d[i, members].min()
                mean = g[members].mean(0)
                centre[gloss] = (1 - q[i] @ mean / np.linalg.norm(mean)) if metric == "cosine" \
                    else np.linalg.norm(q[i] - mean)
        own = int(queries.labels[i])
        eligible.append(own in nearest)
        for hits, per_gloss in ((knn_hits, nearest), (centroid_hits, centre)):
            ranked = sorted(per_gloss, key=lambda gl: (per_gloss[gl], gl))
            for k in KS:
                hits[k].append(own in ranked[:k])
        order = [j for j in np.argsort(d[i], kind="stable") if allowed[j]]
        relevant = [gallery.labels[j] == own for j in order]
        r = sum(relevant)
        if r:
            aps.append(sum(np.mean(relevant[: k + 1]) for k in range(r) if relevant[k]) / r)
    eligible = np.asarray(eligible)
    out = {"queries": len(q), "answerable_queries": int(eligible.sum())}
    for prefix, hits in (("knn", knn_hits), ("centroid", centroid_hits)):
        for k in KS:
            hit = np.asarray(hits[k])
            out[f"{prefix}_top{k}"] = float(hit[eligible].mean()) if eligible.any() else float("nan")
            out[f"{prefix}_top{k}_all"] = float(hit.mean()) if len(hit) else float("nan")
    if details:
        out["map_at_r"] = float(np.mean(aps)) if aps else float("nan")
    return out


def reference_masks(gallery: EmbeddedSet, queries: EmbeddedSet | None):
    """(standard, cross-signer or None) exclusions, from the ids, as (Q, G) arrays."""
    same = queries is None
    queries = gallery if same else queries
    base = np.zeros((len(queries), len(gallery)), bool)
    if same:
        base |= np.eye(len(gallery), dtype=bool) | (queries.video_ids[:, None] == gallery.video_ids[None, :])
    known = (gallery.signer_ids != "").all() and (queries.signer_ids != "").all()
    cross = None
    if known and len(set(gallery.signer_ids) | set(queries.signer_ids)) > 1:
        cross = base | (queries.signer_ids[:, None] == gallery.signer_ids[None, :])
    return base, cross


def reference_report(gallery: EmbeddedSet, queries: EmbeddedSet | None, metric: str) -> dict:
    same = queries is None
    if not same:
        assert gallery.label_names == queries.label_names[: len(gallery.label_names)]
        gallery = EmbeddedSet(gallery.embeddings, gallery.labels, queries.label_names, gallery.video_ids,
                              gallery.signer_ids)
    asked = gallery if same else queries
    base, cross = reference_masks(gallery, queries)
    masks = {"standard": base} | ({"cross_signer": cross} if cross is not None else {})
    out = {name: reference_protocol(gallery, asked, mask, metric) for name, mask in masks.items()}
    for shots in SHOTS:
        for suffix, mask in (("", base), ("_cross_signer", cross)):
            if mask is None:
                continue
            runs = []
            for draw in range(DRAWS):
                chosen = enrolment_draw(gallery.labels, shots, np.random.default_rng([SEED, shots, draw]))
                rows = np.setdiff1d(np.arange(len(asked)), chosen) if same else np.arange(len(asked))
                runs.append(reference_protocol(gallery.subset(chosen), asked.subset(rows),
                                               mask[np.ix_(rows, chosen)], metric, details=False))
            out[f"few_shot_{shots}{suffix}"] = {key: float(np.nanmean([r[key] for r in runs])) for key in runs[0]}
    return out


# ----------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("name", sorted(cases()))
def test_blocks_reproduce_the_frozen_full_matrix_figures(name, golden):
    gallery, queries, metric = cases()[name]
    for block_size in (1, 7, None):
        assert_same(report(gallery, queries, metric, block_size=block_size), golden[name],
                    f"{name}[block_size={block_size}]")


@pytest.mark.parametrize("name", sorted(cases()))
def test_blocks_match_a_per_query_reference(name):
    gallery, queries, metric = cases()[name]
    want = reference_report(gallery, queries, metric)
    got = evaluate_embeddings(gallery, queries, metric=metric, shots=SHOTS, draws=DRAWS, seed=SEED,
                              block_size=5).protocols
    assert set(got) == set(want)
    for protocol_name, figures in want.items():
        metrics = got[protocol_name].metrics
        for key, value in figures.items():
            if key in ("queries", "answerable_queries") or key.startswith(("knn", "centroid")) and "std" not in key:
                expected = value
                assert (math.isnan(metrics[key]) and math.isnan(expected)) or \
                    metrics[key] == pytest.approx(expected, abs=1e-9 if key != "map_at_r" else 1e-6), \
                    (protocol_name, key)
            else:
                assert metrics[key] == pytest.approx(value, abs=1e-6), (protocol_name, key)


@pytest.mark.parametrize("name", sorted(cases()))
def test_block_sizes_agree(name):
    gallery, queries, metric = cases()[name]
    one_block = report(gallery, queries, metric, block_size=10**6)
    for block_size in (1, 7):
        assert_same(report(gallery, queries, metric, block_size=block_size), one_block, f"block_size={block_size}")


def test_bad_block_size_is_a_clear_error():
    gallery, _, metric = cases()["same_euclidean"]
    with pytest.raises(ValueError, match="block_size"):
        evaluate_embeddings(gallery, None, metric=metric, block_size=0)


def freeze() -> None:
    """Write the golden figures with the implementation checked out now."""
    GOLDEN.parent.mkdir(exist_ok=True)
    figures = {name: report(g, q, m) for name, (g, q, m) in sorted(cases().items())}
    GOLDEN.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--freeze"]:
        sys.exit("usage: python tests/evaluation/test_report_blocks.py --freeze")
    freeze()
