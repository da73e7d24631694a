"""Exact (flat) top-k search over a VectorTable, with a candidate mask.

Ties are broken by row number (insertion order), so results are deterministic and
equal a brute-force sort by ``(-score, row)``.

This module is also the seam for other indexes: the store calls only
``index.search(queries, k, mask)``, the ``added`` / ``removed`` / ``renumbered`` /
``reset`` notifications and ``save`` / ``load`` of derived files, so an approximate
index can take FlatIndex's place (see ``indexes``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

if TYPE_CHECKING:
    from pathlib import Path

    from ragmem.stores.local.table import VectorTable
    from ragmem.types import Metric, Vectors

__all__ = ["FlatIndex", "Ranked", "prepare_queries", "top_k", "top_k_rows"]

Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float32]
Ranked = tuple[Rows, Scores]
"""Row numbers and their scores for one query, best first."""

# Below this fraction of matching rows, search gathers the matching rows instead of
# scoring everything and masking.
_GATHER_FRACTION = 0.2
# Score blocks are kept near this many floats so a large batch never allocates an
# (n_queries, n_rows) matrix at once.
_BLOCK_FLOATS = 1 << 23
_NEG_INF = np.float32(-np.inf)


def prepare_queries(queries: Vectors, metric: Metric) -> Vectors:
    """Queries as the kernel expects them (unit length for cosine)."""
    if metric != "cosine":
        return queries
    norms = np.linalg.norm(queries, axis=1, keepdims=True)
    np.maximum(norms, np.finfo(np.float32).tiny, out=norms)
    unit: Vectors = (queries / norms).astype(np.float32, copy=False)
    return unit


class FlatIndex:
    """Exact search: scores every candidate row with one matrix product per query block.

    Args:
        table: the store's rows (read at search time; the flat index keeps no copy).
        metric: ``"cosine"`` (rows and queries unit length), ``"dot"`` or ``"l2"``.
    """

    def __init__(self, table: VectorTable, metric: Metric) -> None:
        self.table = table
        self.metric = metric

    # Flat search reads the table directly, so it has nothing to update.
    def added(self, rows: Rows) -> None:
        """Rows were written (new or replaced)."""

    def removed(self, rows: Rows) -> None:
        """Rows were deleted."""

    def reset(self) -> None:
        """Rows changed wholesale: rebuild whatever the index derives from the table."""

    def renumbered(self, kept: Rows) -> None:
        """Deleted rows were dropped: row ``kept[i]`` is now row ``i``."""
        self.reset()

    def save(self, directory: Path, generation: int) -> None:
        """Write derived files for snapshot ``generation`` (flat search has none)."""

    def load(self, directory: Path, generation: int) -> None:
        """The snapshot of ``generation`` was loaded: adopt its derived files or rebuild."""
        self.reset()

    def search(self, queries: Vectors, k: int, mask: Mask | None) -> list[Ranked]:
        """Best ``k`` rows for each query among ``mask`` (None: every live row).

        ``queries`` are already prepared for the metric (unit length for cosine).
        """
        table = self.table
        n = table.n
        if mask is None and table.live < n:
            mask = table.live_mask()
        n_match = n if mask is None else int(np.count_nonzero(mask))
        if n_match == 0:
            return [(np.empty(0, np.int64), np.empty(0, np.float32)) for _ in queries]
        matrix, sq_norms = table.view(), table.sq_norms[:n]
        rows: Rows | None = None
        bias = None
        if mask is not None and n_match < _GATHER_FRACTION * n:
            rows = np.flatnonzero(mask)
            matrix, sq_norms = matrix[:, rows], sq_norms[rows]
        elif mask is not None:
            # one additive pass instead of a fancy-indexed assignment per score block
            bias = np.where(mask, np.float32(0), _NEG_INF)
        k = min(k, n_match)
        width = matrix.shape[1]
        block = max(1, _BLOCK_FLOATS // width)
        out: list[Ranked] = []
        for start in range(0, len(queries), block):
            scores = self._scores(queries[start : start + block], matrix, sq_norms)
            if bias is not None:
                scores += bias
            out.extend(top_k_rows(scores, k, rows))
        return out

    def _scores(self, queries: Vectors, matrix: Vectors, sq_norms: Scores) -> Scores:
        """Score block (n_queries, n_rows); higher is better for every metric.

        For l2 the score is ``-||x - q||^2 = 2 x.q - ||x||^2 - ||q||^2``.
        """
        scores: Scores = queries @ matrix
        if self.metric == "l2":
            q_norms = np.einsum("ij,ij->i", queries, queries)
            scores *= 2.0
            scores -= sq_norms[None, :]
            scores -= q_norms[:, None]
        return scores


def top_k(scores: Scores, k: int, rows: Rows | None = None) -> Ranked:
    """Best ``k`` entries of a 1-D score vector, ties by position; returns (rows, scores).

    ``-inf`` marks excluded entries and is never returned. ``rows`` maps positions
    to row numbers when ``scores`` covers a gathered subset (still in row order).
    """
    n = scores.shape[0]
    k = min(k, n)
    if k < n:
        part = np.argpartition(scores, n - k)[n - k :]
        threshold = scores[part].min()
        # every entry tied with the k-th score competes, so ties resolve by position
        candidates = np.flatnonzero(scores >= threshold)
    else:
        candidates = np.arange(n)
    values = scores[candidates]
    finite = values > _NEG_INF
    if not finite.all():
        candidates, values = candidates[finite], values[finite]
    order = np.lexsort((candidates, -values))[:k]
    chosen = candidates[order]
    out_rows = chosen if rows is None else rows[chosen]
    return out_rows.astype(np.int64, copy=False), values[order]


def top_k_rows(scores: Scores, k: int, rows: Rows | None = None) -> list[Ranked]:
    """``top_k`` for each row of a (b, n) score block, vectorised across the block.

    A lower bound on each query's k-th best score comes from block maxima: the k-th
    largest of the maxima of blocks of ``width`` columns is reached by at least k
    entries. Only entries at or above it are sorted, which replaces a full
    ``argpartition`` per query (the dominant cost of batched search) by two cheap
    passes over the block.
    """
    b, n = scores.shape
    width = min(64, n // (8 * k)) if k else 0
    if b == 1 or width < 4:
        return [top_k(s, k, rows) for s in scores]
    n_blocks = n // width
    blocks = as_strided(
        scores, shape=(b, n_blocks, width), strides=(scores.strides[0], 4 * width, 4)
    )
    maxima = blocks.max(axis=2)
    bound = np.partition(maxima, n_blocks - k, axis=1)[:, n_blocks - k]
    # a bound of -inf (too few blocks with a candidate) still keeps every finite entry
    np.maximum(bound, np.finfo(np.float32).min, out=bound)
    query, column = np.nonzero(scores >= bound[:, None])
    values = scores[query, column]
    order = np.lexsort((column, -values, query))
    query, column, values = query[order], column[order], values[order]
    starts = np.searchsorted(query, np.arange(b + 1))
    out: list[Ranked] = []
    for i in range(b):
        lo = starts[i]
        hi = min(starts[i + 1], lo + k)
        chosen = column[lo:hi].astype(np.int64, copy=False)
        out.append((chosen if rows is None else rows[chosen], values[lo:hi]))
    return out
