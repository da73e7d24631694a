"""Exact (flat) top-k search over a matrix of row vectors, with a candidate mask.

Ties are broken by row number (insertion order), so results are deterministic and
equal a brute-force sort by ``(-score, row)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ragmem.types import Metric, Vectors

__all__ = ["prepare_queries", "scores_for", "top_k"]

Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float32]


def prepare_queries(queries: Vectors, metric: Metric) -> Vectors:
    """Queries as the kernel expects them (unit length for cosine)."""
    if metric != "cosine":
        return queries
    norms = np.linalg.norm(queries, axis=1, keepdims=True)
    np.maximum(norms, np.finfo(np.float32).tiny, out=norms)
    unit: Vectors = (queries / norms).astype(np.float32, copy=False)
    return unit


def scores_for(
    queries: Vectors,
    vectors: Vectors,
    sq_norms: Scores | None,
    metric: Metric,
) -> Scores:
    """Score matrix (n_queries, n_rows); higher is better for every metric.

    For cosine the stored rows are already unit length, so it is a dot product.
    For l2 the score is ``-||x - q||^2 = 2 x.q - ||x||^2 - ||q||^2``.
    """
    scores: Scores = queries @ vectors.T
    if metric == "l2":
        assert sq_norms is not None
        q_norms = np.einsum("ij,ij->i", queries, queries)
        scores *= 2.0
        scores -= sq_norms[None, :]
        scores -= q_norms[:, None]
    return scores


def top_k(scores: Scores, k: int, rows: Rows | None = None) -> tuple[Rows, Scores]:
    """Best ``k`` entries of a 1-D score vector, ties by position; returns (positions, scores).

    ``-inf`` marks excluded entries and is never returned. ``rows`` maps positions
    to row numbers when ``scores`` covers a gathered subset (still in row order).
    """
    n = scores.shape[0]
    valid = np.isfinite(scores) if not np.isfinite(scores).all() else None
    available = n if valid is None else int(valid.sum())
    k = min(k, available)
    if k == 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    if k < n:
        part = np.argpartition(-scores, k - 1)[:k]
        threshold = scores[part].min()
        # every entry tied with the k-th score competes, so ties resolve by position
        candidates = np.flatnonzero(scores >= threshold)
    else:
        candidates = np.flatnonzero(scores > -np.inf)
    order = np.lexsort((candidates, -scores[candidates]))[:k]
    chosen = candidates[order]
    out_rows = chosen if rows is None else rows[chosen]
    return out_rows.astype(np.int64, copy=False), scores[chosen]
