"""Exact (flat) top-k search over a VectorTable, with a candidate mask.

Ties are broken by row number (insertion order), so results are deterministic and
equal a brute-force sort by ``(-score, row)``.

This module is also the seam for other indexes: the store calls only
``index.search(queries, k, mask)``, the ``added`` / ``removed`` / ``renumbered`` /
``reset`` notifications and ``save`` / ``load`` of derived files, so an approximate
index can take FlatIndex's place (see ``indexes``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ragmem.stores.local.table import squared_norms

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
Gather = Callable[[Rows], "Vectors"]

# Below this fraction of matching rows, search gathers the matching rows instead of
# scoring everything and masking.
_GATHER_FRACTION = 0.2
# Score blocks are kept near this many floats (32 MiB) so a large batch never
# allocates an (n_queries, n_rows) matrix at once; queries go in blocks of at most
# _QUERY_BLOCK and rows in chunks of at least _MIN_CHUNK (narrower chunks make BLAS
# repack the matrix too often).
_BLOCK_FLOATS = 1 << 23
_QUERY_BLOCK = 1024
_MIN_CHUNK = 8192
# The first chunk's bound is sampled from 1/_SAMPLE_FRACTION of its columns, taken as
# _SAMPLE_PIECES spread-out slices (robust to rows stored in a meaningful order).
_SAMPLE_FRACTION = 16
_SAMPLE_PIECES = 8
# Past this many candidates (ties) per block, each row is reduced exactly instead.
_MAX_CANDIDATES = 1 << 20
_TIES_PER_RESULT = 64
_NEG_INF = np.float32(-np.inf)


def prepare_queries(queries: Vectors, metric: Metric) -> Vectors:
    """Queries as the kernel expects them (unit length for cosine)."""
    if metric != "cosine":
        return queries
    # In float64, so that vectors whose squared norm underflows or overflows float32
    # still get unit length (a zero vector stays zero); one path for one query and many,
    # so a query scores the same alone or in a batch.
    wide = queries.astype(np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", wide, wide))[:, None]
    norms[norms == 0] = 1.0
    unit: Vectors = (wide / norms).astype(np.float32)
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
    def added(self, rows: Rows, vectors: Vectors) -> None:
        """Rows were written (new or replaced) with ``vectors``."""

    def removed(self, rows: Rows) -> None:
        """Rows were deleted."""

    def reset(self) -> None:
        """Rows changed wholesale: rebuild whatever the index derives from the table."""

    def renumbered(self, kept: Rows) -> None:
        """Deleted rows were dropped: row ``kept[i]`` is now row ``i``."""
        self.reset()

    def vectors(self, rows: Rows) -> Vectors:
        """The ``(m, d)`` vectors of live ``rows``."""
        return self.table.rows(rows)

    def save(self, directory: Path, version: str) -> None:
        """Write derived files for the table of ``version`` (flat search has none)."""

    def load(self, directory: Path, version: str) -> bool:
        """The table of ``version`` was loaded: adopt its derived files or rebuild.

        Returns:
            False when a derived file had to be rebuilt (it is then worth saving).
        """
        self.reset()
        return True

    def search(self, queries: Vectors, k: int, mask: Mask | None) -> list[Ranked]:
        """Best ``k`` rows for each query among ``mask`` (None: every live row).

        ``queries`` are already prepared for the metric (unit length for cosine).
        """
        return self.exact_search(queries, k, mask)

    def exact_search(
        self, queries: Vectors, k: int, mask: Mask | None, *, gather: Gather | None = None
    ) -> list[Ranked]:
        """``search``, exactly; ``gather`` reads the rows when few match.

        ``gather(rows)`` gives the ``(m, d)`` vectors of ``rows`` from a row-major copy
        of them: gathering scattered rows from the dimension-major table instead reads
        a separate cache line for every float.
        """
        table = self.table
        n = table.n
        if mask is None and table.live < n:
            mask = table.live_mask()
        n_match = n if mask is None else int(np.count_nonzero(mask))
        if n_match == 0:
            return [(np.empty(0, np.int64), np.empty(0, np.float32)) for _ in queries]
        matrix: Vectors | None = None
        sq_norms = table.sq_norms[:n]
        rows: Rows | None = None
        bias = None
        if not table.holds_vectors:
            # the index keeps the vectors: gather the candidates chunk by chunk
            assert gather is not None
            rows = np.arange(n) if mask is None else np.flatnonzero(mask)
        elif mask is not None and n_match < _GATHER_FRACTION * n:
            rows = np.flatnonzero(mask)
            matrix = table.view()[:, rows] if gather is None else gather(rows).T
            sq_norms = sq_norms[rows]
        else:
            matrix = table.view()
            if mask is not None:
                # one additive pass instead of a fancy-indexed assignment per score block
                bias = np.where(mask, np.float32(0), _NEG_INF)
        k = min(k, n_match)
        width = n_match if matrix is None else matrix.shape[1]
        out: list[Ranked] = []
        for start in range(0, len(queries), _QUERY_BLOCK):
            block = queries[start : start + _QUERY_BLOCK]
            # Columns are scanned in chunks so the score block stays small; a chunk of
            # all rows with all queries would be (n_queries x n_rows) floats at once.
            step = max(_MIN_CHUNK, _BLOCK_FLOATS // len(block))
            best = _Best(len(block), k)
            for lo in range(0, width, step):
                hi = min(width, lo + step)
                if matrix is None:
                    assert gather is not None
                    assert rows is not None
                    chunk = gather(rows[lo:hi])
                    norms = squared_norms(chunk) if self.metric == "l2" else sq_norms[:0]
                    scores = self._scores(block, chunk.T, norms)
                else:
                    scores = self._scores(block, matrix[:, lo:hi], sq_norms[lo:hi])
                if bias is not None:
                    scores += bias[lo:hi]
                best.merge(scores, lo)
            out.extend(best.ranked(rows))
        return out

    def _scores(self, queries: Vectors, matrix: Vectors, sq_norms: Scores) -> Scores:
        """Score block (n_queries, n_rows); higher is better for every metric.

        For l2 the score is ``-||x - q||^2 = 2 x.q - ||x||^2 - ||q||^2``.
        """
        if len(queries) == 1:
            # a vector-matrix product runs BLAS gemv, measurably faster than a 1-row gemm
            scores: Scores = (queries[0] @ matrix)[None, :]
        else:
            # computed as rows x queries: each score is then summed the same way
            # whatever column it lands in, so equal vectors tie exactly after compaction
            scores = np.ascontiguousarray((matrix.T @ queries.T).T)
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


def _select(scores: Scores, k: int, bound: Scores | None) -> tuple[Rows, Rows, Scores]:
    """Entries of a (b, w) score block that may be among each row's best ``k`` (ties kept).

    Returns (row in block, column, score) for every entry at or above a per-row lower
    bound on the k-th best score. Without a ``bound`` from earlier chunks it comes from
    a sample: the k-th best of a few spread-out column slices is reached by at least k
    entries. This replaces a full ``argpartition`` per query, which dominated the cost
    of batched search, by one comparison pass over the block.
    """
    b, w = scores.shape
    if bound is None:
        sample_width = w // _SAMPLE_FRACTION
        if sample_width >= 8 * k:
            piece = sample_width // _SAMPLE_PIECES
            offsets = np.linspace(0, w - piece, _SAMPLE_PIECES).astype(np.int64)
            sample = np.concatenate([scores[:, o : o + piece] for o in offsets], axis=1)
        else:
            sample = scores
        cut = sample.shape[1] - min(k, sample.shape[1])
        bound = np.partition(sample, cut, axis=1)[:, cut]
    # -inf marks masked-out entries: they must never pass, even when the bound is -inf
    bound = np.maximum(bound, np.finfo(np.float32).min)
    flat = np.flatnonzero(scores >= bound[:, None])
    if len(flat) > max(_MAX_CANDIDATES, _TIES_PER_RESULT * b * k):
        # massive ties: keep each row's exact best k instead of every tied entry
        parts = [top_k(row, k) for row in scores]
        query = np.repeat(np.arange(b), [len(p[0]) for p in parts])
        column = np.concatenate([p[0] for p in parts])
        return query, column, np.concatenate([p[1] for p in parts])
    query, column = np.divmod(flat, w)
    return query, column, scores.reshape(-1)[flat]


class _Best:
    """The best ``k`` (row, score) pairs per query so far, merged chunk by chunk."""

    def __init__(self, n_queries: int, k: int) -> None:
        self.b, self.k = n_queries, k
        self.query = np.empty(0, np.int64)
        self.column = np.empty(0, np.int64)
        self.value = np.empty(0, np.float32)
        self.bound: Scores | None = None
        self.starts = np.zeros(n_queries + 1, np.int64)

    def merge(self, scores: Scores, offset: int) -> None:
        """Fold in a (b, w) score block whose column 0 is row ``offset``."""
        query, column, value = _select(scores, self.k, self.bound)
        query = np.concatenate([self.query, query])
        column = np.concatenate([self.column, column + offset])
        value = np.concatenate([self.value, value])
        # ties resolve by row: earlier chunks hold smaller rows, and lexsort is stable
        order = np.lexsort((column, -value, query))
        query, column, value = query[order], column[order], value[order]
        starts = np.searchsorted(query, np.arange(self.b + 1))
        rank = np.arange(len(query)) - starts[query]
        keep = rank < self.k
        self.query, self.column, self.value = query[keep], column[keep], value[keep]
        counts = np.minimum(np.diff(starts), self.k)
        self.starts = np.concatenate([[0], np.cumsum(counts)])
        # the k-th best so far bounds what later chunks must beat (or tie)
        full = counts == self.k
        bound = np.full(self.b, _NEG_INF, np.float32)
        bound[full] = self.value[self.starts[1:][full] - 1]
        self.bound = bound

    def ranked(self, rows: Rows | None) -> list[Ranked]:
        out: list[Ranked] = []
        for i in range(self.b):
            lo, hi = self.starts[i], self.starts[i + 1]
            chosen = self.column[lo:hi]
            out.append((chosen if rows is None else rows[chosen], self.value[lo:hi]))
        return out


def top_k_rows(scores: Scores, k: int, rows: Rows | None = None) -> list[Ranked]:
    """``top_k`` for each row of a (b, n) score block, vectorised across the block."""
    best = _Best(scores.shape[0], min(k, scores.shape[1]))
    best.merge(scores, 0)
    return best.ranked(rows)
