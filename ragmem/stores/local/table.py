"""VectorTable: the rows of the built-in store, stored dimension-major.

The matrix is held as ``(dimensions, capacity)`` float32, so one query is a
``q @ matrix`` scan along contiguous memory: measured faster than the row-major
``matrix @ q`` for single queries on the same BLAS. Rows are numbered in insertion
order; a deleted row stays as a tombstone until ``compact`` renumbers the survivors
(keeping their relative order, which is how score ties are broken).

An index that keeps every vector itself (the HNSW graph) sets ``vectors_elsewhere``:
the table then keeps only the live flags and norms, so the vectors are held once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ragmem.types import Vectors

__all__ = ["GROWTH", "VectorTable", "squared_norms"]

Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float32]

# Capacity grows by 1/8 at a time (plus exact sizing for large batches), so spare
# capacity stays a small fraction of the vector bytes; the copies this costs amortise
# to a constant per row.
GROWTH = 0.125


def squared_norms(vectors: Vectors) -> Scores:
    """``||x||^2`` per row, always summed the same way (scores must not depend on history)."""
    rows: Vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    out: Scores = np.einsum("ij,ij->i", rows, rows)
    return out


class VectorTable:
    """Rows ``0..n-1`` of vectors with squared norms and a live flag per row."""

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self.n = 0  # rows in use, live or tombstoned
        self.live = 0
        self.vectors_elsewhere = False
        self.matrix = np.empty((dimensions, 0), np.float32)
        self.sq_norms = np.empty(0, np.float32)
        self.alive = np.empty(0, np.bool_)

    @property
    def capacity(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def holds_vectors(self) -> bool:
        """Whether ``view`` and ``rows`` can answer (the matrix covers every row)."""
        return self.capacity >= self.n

    def release_vectors(self) -> None:
        """Drop the matrix when an index keeps the vectors (after it was built from it)."""
        if self.vectors_elsewhere:
            self.matrix = np.empty((self.dimensions, 0), np.float32)

    def view(self) -> Vectors:
        """The ``(dimensions, n)`` matrix of rows in use (a view, no copy)."""
        return self.matrix[:, : self.n]

    def reserve(self, rows: int) -> None:
        """Make room for ``rows`` rows in total."""
        if rows <= len(self.alive):
            return
        capacity = max(rows, int(len(self.alive) * (1 + GROWTH)) + 64)
        if not self.vectors_elsewhere:
            matrix = np.empty((self.dimensions, capacity), np.float32)
            matrix[:, : self.n] = self.matrix[:, : self.n]
            self.matrix = matrix
        sq_norms = np.zeros(capacity, np.float32)
        sq_norms[: self.n] = self.sq_norms[: self.n]
        self.sq_norms = sq_norms
        alive = np.zeros(capacity, np.bool_)
        alive[: self.n] = self.alive[: self.n]
        self.alive = alive

    def write(self, rows: Rows, vectors: Vectors) -> None:
        """Store ``vectors`` (m, d) at ``rows``; rows at or past ``n`` extend the table."""
        if len(rows) == 0:
            return
        top = int(rows.max()) + 1
        self.reserve(top)
        newly_alive = int((~self.alive[rows]).sum())
        if not self.vectors_elsewhere:
            self.matrix[:, rows] = vectors.T
        self.sq_norms[rows] = squared_norms(vectors)
        self.alive[rows] = True
        self.n = max(self.n, top)
        self.live += newly_alive

    def append(self, vectors: Vectors) -> None:
        """Store ``vectors`` as new rows at the end (a contiguous block copy)."""
        m = len(vectors)
        self.reserve(self.n + m)
        end = self.n + m
        if not self.vectors_elsewhere:
            self.matrix[:, self.n : end] = vectors.T
        self.sq_norms[self.n : end] = squared_norms(vectors)
        self.alive[self.n : end] = True
        self.n = end
        self.live += m

    def adopt(self, matrix: Vectors | None, rows: int) -> None:
        """Take a ``(dimensions, rows)`` C-contiguous matrix (no copy) as the live rows.

        With ``matrix=None`` the index that keeps the vectors supplies them (``rows``
        rows, norms left at zero: only the index reads them).
        """
        self.matrix = np.empty((self.dimensions, 0), np.float32) if matrix is None else matrix
        self.sq_norms = np.zeros(rows, np.float32)
        self.alive = np.ones(rows, np.bool_)
        self.n = self.live = rows
        for start in range(0, rows if matrix is not None else 0, 65536):
            end = min(rows, start + 65536)
            self.sq_norms[start:end] = squared_norms(self.matrix[:, start:end].T)

    def kill(self, rows: Rows) -> None:
        """Mark rows deleted (their numbers are not reused until ``compact``)."""
        self.live -= int(self.alive[rows].sum())
        self.alive[rows] = False

    def rows(self, rows: Rows) -> Vectors:
        """Vectors of ``rows`` as a new ``(m, d)`` array."""
        out: Vectors = np.ascontiguousarray(self.matrix[:, rows].T)
        return out

    def live_mask(self) -> Mask:
        return self.alive[: self.n]

    def compact(self) -> Rows:
        """Drop tombstones, keeping the order of live rows; returns their old row numbers.

        The matrix is rebuilt at exactly the live size, so a store that shrank gives
        its memory back.
        """
        kept = np.flatnonzero(self.alive[: self.n])
        m = len(kept)
        if self.holds_vectors:
            matrix = np.empty((self.dimensions, m), np.float32)
            # column blocks keep the temporary copy small for large tables
            for start in range(0, m, 65536):
                block = kept[start : start + 65536]
                matrix[:, start : start + len(block)] = self.matrix[:, block]
            self.matrix = matrix
        self.sq_norms = self.sq_norms[kept].copy()
        self.alive = np.ones(m, np.bool_)
        self.n = self.live = m
        return kept.astype(np.int64, copy=False)

    def nbytes(self) -> int:
        """Bytes held by the arrays (capacity included)."""
        return int(self.matrix.nbytes + self.sq_norms.nbytes + self.alive.nbytes)
