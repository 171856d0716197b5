"""Query blocks: evaluating Q queries against a G-sample gallery ``B`` queries at a time.

Every protocol's work per query is one row of distances and one row of exclusions
against the whole gallery; holding all rows at once is ``Q x G`` (a same-set evaluation
of 21,000 clips: 441 million entries per matrix, gigabytes with the masks and sorts).
A block holds ``B`` rows, so peak memory grows with the gallery, not with gallery x
queries, and every figure is still computed per query exactly as before: only how many
rows are alive at once changes.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from evaluation.exclusions import Exclusions
from evaluation.knn import pairwise_distances

# About this many bytes of (B, G) work per block: tens of MB, whatever the gallery size.
DEFAULT_BLOCK_BYTES = 64 * 2**20


def query_block_size(gallery_size: int, num_glosses: int = 0, dim: int = 0,
                     budget_bytes: int = DEFAULT_BLOCK_BYTES) -> int:
    """Queries per block so one block's work stays near ``budget_bytes``.

    Per query row: distances, their masked copy, the mask, a sort order and MAP@R's
    hits (about 48 bytes per gallery sample), plus, at worst (cross-signer: one
    excluded member in every class), a float64 centroid correction per class (24 bytes
    per class and dimension).
    """
    per_query = 48 * max(int(gallery_size), 1) + 24 * int(num_glosses) * int(dim)
    return max(1, int(budget_bytes) // per_query)


def checked_block_size(block_size: int | None) -> int | None:
    """``block_size`` itself, after refusing anything but ``None`` (automatic) or a positive int."""
    if block_size is None:
        return None
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be a positive number of queries (or None for automatic), got {block_size!r}")
    return int(block_size)


@dataclass
class QueryBlock:
    """Queries ``rows`` against the whole gallery: their distances and exclusions, ``(B, G)``."""

    rows: slice
    distances: torch.Tensor
    excluded: torch.Tensor | None


def query_blocks(query_emb: np.ndarray, gallery_emb: np.ndarray, metric: str,
                 excluded: Exclusions | torch.Tensor | None = None, block_size: int | None = None,
                 distances: torch.Tensor | None = None, num_glosses: int = 0) -> Iterator[QueryBlock]:
    """The query set in consecutive blocks (at least one, possibly empty), each with its distances and mask.

    ``excluded`` is a rule (masks built per block) or, for callers that already hold
    them on a small set, a full ``(Q, G)`` mask; ``distances`` likewise may be a full
    matrix to slice instead of computing each block's.
    """
    n, g = len(query_emb), len(gallery_emb)
    dim = np.shape(gallery_emb)[1] if np.ndim(gallery_emb) == 2 else 0
    size = checked_block_size(block_size) or query_block_size(g, num_glosses, dim)
    for start in range(0, max(n, 1), size):
        rows = slice(start, min(start + size, n))
        d = distances[rows] if distances is not None else pairwise_distances(query_emb[rows], gallery_emb, metric)
        mask = None if excluded is None else excluded.block(rows) if isinstance(excluded, Exclusions) \
            else excluded[rows]
        yield QueryBlock(rows, d, mask)
