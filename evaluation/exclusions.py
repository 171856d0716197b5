"""Which gallery samples a query may not use, kept as id arrays and turned into masks per query block.

A protocol's exclusions (the query itself in a same-set evaluation, any clip of its video,
any clip of its signer) are equalities between a query's id and a gallery sample's id.
Storing the ids instead of the ``(Q, G)`` boolean matrix keeps memory linear in the set
sizes: a block of ``B`` queries gets its ``(B, G)`` mask when it is evaluated, and a
few-shot draw keeps the rows and columns it uses by slicing the id arrays.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


def shared_codes(query_groups, gallery_groups) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer codes for two id arrays such that equal ids (strings, ints) get equal codes."""
    q, g = np.asarray(query_groups), np.asarray(gallery_groups)
    _, codes = np.unique(np.concatenate([q, g]), return_inverse=True)
    codes = torch.from_numpy(codes.reshape(-1).astype(np.int64))
    return codes[: len(q)], codes[len(q):]


@dataclass(frozen=True)
class Exclusions:
    """Query i may not use gallery sample j when, for any rule, ``query_codes[i] == gallery_codes[j]``."""

    rules: tuple[tuple[torch.Tensor, torch.Tensor], ...]   # (query codes (Q,), gallery codes (G,)) per rule

    @classmethod
    def of(cls, *groups: tuple[Sequence, Sequence]) -> Exclusions:
        """From (query ids, gallery ids) pairs: row numbers for "itself", video ids, signer ids."""
        return cls(tuple(shared_codes(q, g) for q, g in groups))

    def __or__(self, other: Exclusions | None) -> Exclusions:
        return self if other is None else Exclusions(self.rules + other.rules)

    @property
    def shape(self) -> tuple[int, int]:
        q, g = self.rules[0]
        return len(q), len(g)

    def block(self, rows: slice | np.ndarray) -> torch.Tensor:
        """``(B, G)`` mask of the query rows ``rows``, True = excluded."""
        mask = None
        for q_codes, g_codes in self.rules:
            hit = q_codes[rows][:, None] == g_codes[None, :]
            mask = hit if mask is None else mask.logical_or_(hit)
        return mask

    def dense(self) -> torch.Tensor:
        """The whole ``(Q, G)`` mask: only for small sets and tests; evaluation uses :meth:`block`."""
        return self.block(slice(None))

    def subset(self, query_rows: np.ndarray, gallery_columns: np.ndarray) -> Exclusions:
        """The exclusions between some queries and some gallery samples (a few-shot enrolment)."""
        q_rows, g_cols = torch.as_tensor(query_rows, dtype=torch.long), torch.as_tensor(gallery_columns,
                                                                                        dtype=torch.long)
        return Exclusions(tuple((q[q_rows], g[g_cols]) for q, g in self.rules))
