"""2-D views of embeddings: a PNG for reports and an interactive HTML page (no external scripts)."""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from datasets.atomic import atomic_write


def project_2d(embeddings: np.ndarray, seed: int = 0, method: str = "tsne") -> np.ndarray:
    """t-SNE (or PCA for tiny sets) of ``(N, D)`` embeddings to ``(N, 2)``."""
    embeddings = np.asarray(embeddings, np.float32)
    if method == "pca" or len(embeddings) < 10:
        centred = embeddings - embeddings.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return centred @ vt[:2].T if vt.shape[0] >= 2 else np.c_[centred[:, :1], np.zeros(len(centred))]
    from sklearn.manifold import TSNE
    perplexity = float(min(30, max(2, (len(embeddings) - 1) // 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(embeddings)


def scatter(points_2d: np.ndarray, labels, label_names, out_png: Path, out_html: Path | None = None,
            title: str = "embeddings", hover: list[str] | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = np.asarray(labels)
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab20")
    for i, c in enumerate(np.unique(labels)):
        sel = labels == c
        ax.scatter(points_2d[sel, 0], points_2d[sel, 1], s=10, color=cmap(i % 20), label=str(label_names[c]))
    if len(np.unique(labels)) <= 20:
        ax.legend(fontsize=6, markerscale=1.5, loc="best")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_write(out_png, "wb") as handle:
        fig.savefig(handle, format="png", dpi=90)
    plt.close(fig)
    if out_html is not None:
        _write_html(points_2d, labels, label_names, out_html, title, hover)


def _write_html(points_2d, labels, label_names, out_html: Path, title: str, hover) -> None:
    """A self-contained SVG page: hover a point to see its gloss (and id)."""
    xy = np.asarray(points_2d, np.float64)
    lo, hi = xy.min(0), xy.max(0)
    scaled = (xy - lo) / np.where(hi - lo > 0, hi - lo, 1) * 760 + 20
    circles = []
    for i, ((x, y), c) in enumerate(zip(scaled, labels)):
        hue = (int(c) * 137) % 360
        tip = html.escape(str(label_names[c]) + (f" — {hover[i]}" if hover else ""))
        circles.append(f'<circle cx="{x:.1f}" cy="{800 - y:.1f}" r="4" fill="hsl({hue},70%,45%)">'
                       f"<title>{tip}</title></circle>")
    page = (f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<h3>{html.escape(title)}</h3><svg width='800' height='800' style='border:1px solid #ccc'>"
            + "".join(circles) + "</svg><script type='application/json' id='data'>"
            + html.escape(json.dumps({"labels": [str(label_names[c]) for c in labels]})) + "</script>")
    with atomic_write(out_html, "w") as handle:
        handle.write(page)
