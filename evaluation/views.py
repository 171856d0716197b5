"""Tables and figures of evaluation results for notebooks (returned, never written to disk).

Unlike :mod:`evaluation.plots` (files for training runs, Agg backend), these functions
return pandas tables and matplotlib figures, so a notebook shows them inline.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from datasets.errors import UsageError
from evaluation.report import ROWS, EvaluationResult

PROJECTIONS = ("tsne", "pca", "umap")


def results_frame(results: Sequence[EvaluationResult], protocols: Sequence[str] | None = None):
    """Protocol × metric rows, one column per model (the model beside its untrained baseline)."""
    import pandas as pd
    rows = []
    for name, proto in results[0].protocols.items():
        if protocols is not None and name not in protocols:
            continue
        for title, key in ROWS:
            if key not in proto.metrics:
                continue
            answerable = f"{proto.metrics['answerable_queries']:.4g}/{proto.metrics['queries']}"
            row = {"protocol": name, "answerable": answerable, "metric": title}
            for result in results:
                metrics = result.protocols[name].metrics if name in result.protocols else {}
                row[result.model] = metrics.get(key, np.nan)
                if f"{key}_std" in metrics:
                    row[f"{result.model} ±"] = metrics[f"{key}_std"]
            rows.append(row)
    return pd.DataFrame(rows).set_index(["protocol", "answerable", "metric"])


def per_gloss_frame(result: EvaluationResult, protocol: str = "standard"):
    """Per-gloss accuracy and most-confused gloss, worst first."""
    import pandas as pd
    frame = pd.DataFrame(result.protocols[protocol].per_gloss)
    return frame.sort_values(["top1", "gloss"], na_position="last").reset_index(drop=True)


def per_gloss_figure(result: EvaluationResult, protocol: str = "standard", max_glosses: int = 40):
    """Horizontal bars of per-gloss top-1 (the ``max_glosses`` worst glosses when there are more)."""
    import matplotlib.pyplot as plt
    frame = per_gloss_frame(result, protocol).dropna(subset=["top1"]).head(max_glosses)
    fig, ax = plt.subplots(figsize=(6, 0.22 * len(frame) + 1))
    ax.barh(frame["gloss"], frame["top1"], color="#1f77b4", label="top-1")
    ax.barh(frame["gloss"], frame["top5"] - frame["top1"], left=frame["top1"], color="#aec7e8", label="top-5")
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.set_title(f"{result.model}: per-gloss accuracy ({protocol})", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def confusion_figure(result: EvaluationResult, protocol: str = "standard", max_glosses: int = 30):
    """Row-normalised top-1 confusion matrix over the most confused glosses."""
    import matplotlib.pyplot as plt
    confusion = result.protocols[protocol].confusion.astype(np.float64)
    names = np.asarray(result.label_names)
    used = np.flatnonzero(confusion.sum(1) + confusion.sum(0))
    errors = confusion.sum(1) - np.diag(confusion) + confusion.sum(0) - np.diag(confusion)
    chosen = used[np.argsort(-errors[used], kind="stable")][:max_glosses]
    chosen = np.sort(chosen)
    sub = confusion[np.ix_(chosen, chosen)]
    sub = sub / np.maximum(sub.sum(1, keepdims=True), 1)
    size = max(4.0, 0.25 * len(chosen) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(sub, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(chosen)), names[chosen], rotation=90, fontsize=7)
    ax.set_yticks(range(len(chosen)), names[chosen], fontsize=7)
    ax.set_xlabel("predicted (top-1)")
    ax.set_ylabel("true gloss")
    ax.set_title(f"{result.model}: confusion ({protocol})", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def project(embeddings: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """``(N, D)`` → ``(N, 2)`` by t-SNE, PCA or UMAP (UMAP needs the optional ``umap-learn``)."""
    from evaluation.plots import project_2d
    if method not in PROJECTIONS:
        raise UsageError(f"unknown projection {method!r}; choose from {', '.join(PROJECTIONS)}")
    if method != "umap":
        return project_2d(embeddings, seed=seed, method=method)
    try:
        import umap
    except ImportError:
        raise UsageError("method 'umap' needs umap-learn (pip install umap-learn); or use 'tsne'") from None
    neighbours = int(min(15, max(2, len(embeddings) - 1)))
    return umap.UMAP(n_neighbors=neighbours, random_state=seed).fit_transform(np.asarray(embeddings, np.float32))


def scatter(ax, points: np.ndarray, codes: np.ndarray, names: Sequence[str], title: str,
            highlight: Sequence[int] = (), legend_max: int = 20) -> None:
    """Points coloured by category (gloss, signer); ``highlight`` rows are circled and numbered."""
    import matplotlib.pyplot as plt
    codes = np.asarray(codes)
    cmap = plt.get_cmap("tab20")
    present = np.unique(codes)
    for i, c in enumerate(present):
        sel = codes == c
        ax.scatter(points[sel, 0], points[sel, 1], s=9, color=cmap(i % 20), label=str(names[c]))
    for rank, row in enumerate(highlight):
        ax.scatter(*points[row], s=140, facecolors="none", edgecolors="black", linewidths=1.5)
        ax.annotate("query" if rank == 0 else str(rank), points[row], fontsize=8, xytext=(4, 4),
                    textcoords="offset points")
    if len(present) <= legend_max:
        ax.legend(fontsize=6, markerscale=1.5, loc="best")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
