"""LocalVectorStore: the built-in numpy store (exact search, columnar metadata filters)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ragmem.columns import MetadataColumns
from ragmem.errors import ConfigurationError, NotFoundError
from ragmem.stores.base import VectorStore
from ragmem.stores.local.flat import prepare_queries, scores_for, top_k
from ragmem.types import Hit, Metadata, Metric, Record, Vectors

if TYPE_CHECKING:
    from ragmem.filters import Filter

__all__ = ["LocalVectorStore"]

Mask = npt.NDArray[np.bool_]

# Below this fraction of matching rows, search gathers the matching rows instead of
# scoring everything and masking.
_GATHER_FRACTION = 0.25


class LocalVectorStore(VectorStore):
    """The built-in vector store: numpy exact search with columnar metadata filters.

    Rows are kept in insertion order (a replaced id keeps its row), which is how
    ties in score are broken.

    Args:
        dimensions: width of every vector.
        metric: ``"cosine"`` (default), ``"dot"`` or ``"l2"``.

    Example:
        >>> import numpy as np
        >>> store = LocalVectorStore(dimensions=3)
        >>> store.upsert(["x", "y"], np.eye(3, dtype=np.float32)[:2],
        ...              texts=["first", "second"], metadata=[{"lang": "en"}, {"lang": "de"}])
        >>> store.search(np.array([1, 1, 0], np.float32), k=5, where={"lang": "de"})[0][0].id
        'y'
    """

    def __init__(self, dimensions: int, *, metric: Metric = "cosine") -> None:
        if not isinstance(dimensions, int) or dimensions < 1:
            raise ConfigurationError(f"dimensions must be a positive integer, got {dimensions!r}")
        self.dimensions = dimensions
        self.metric = self._check_metric(metric)
        self._lock = threading.RLock()
        self._vectors = np.empty((0, dimensions), np.float32)
        self._sq_norms = np.empty(0, np.float32)
        self._alive = np.empty(0, np.bool_)
        self._ids: list[str | None] = []
        self._texts: list[str | None] = []
        self._metadata: list[Metadata] = []
        self._slot_of: dict[str, int] = {}
        self._columns = MetadataColumns()
        self._n = 0  # rows in use (alive or tombstoned)

    def __len__(self) -> int:
        return len(self._slot_of)

    # -- writes -------------------------------------------------------------------------------

    def _upsert(
        self, ids: list[str], vectors: Vectors, texts: list[str | None], metadata: list[Metadata]
    ) -> None:
        if self.metric == "cosine":
            vectors = prepare_queries(vectors, "cosine")
        with self._lock:
            slots = np.empty(len(ids), np.int64)
            new = 0
            for i, id_ in enumerate(ids):
                slot = self._slot_of.get(id_)
                if slot is None:
                    slot = self._n + new
                    new += 1
                slots[i] = slot
            self._reserve(self._n + new)
            for i, id_ in enumerate(ids):
                slot = int(slots[i])
                if slot >= self._n:
                    self._ids.append(id_)
                    self._texts.append(texts[i])
                    self._metadata.append(metadata[i])
                    self._slot_of[id_] = slot
                else:
                    self._texts[slot] = texts[i]
                    self._metadata[slot] = metadata[i]
                self._columns.set(slot, metadata[i])
            self._vectors[slots] = vectors
            self._sq_norms[slots] = np.einsum("ij,ij->i", vectors, vectors)
            self._alive[slots] = True
            self._n += new

    def _reserve(self, rows: int) -> None:
        capacity = self._vectors.shape[0]
        if rows <= capacity:
            return
        capacity = max(rows, int(capacity * 1.5) + 16)
        vectors = np.empty((capacity, self.dimensions), np.float32)
        vectors[: self._n] = self._vectors[: self._n]
        self._vectors = vectors
        self._sq_norms = np.resize(self._sq_norms, capacity)
        alive = np.zeros(capacity, np.bool_)
        alive[: self._n] = self._alive[: self._n]
        self._alive = alive

    def _delete(self, ids: list[str] | None, where: Filter | None) -> int:
        with self._lock:
            if ids is not None:
                slots = [s for s in (self._slot_of.get(i) for i in ids) if s is not None]
            else:
                assert where is not None
                slots = np.flatnonzero(self._candidates(where)).tolist()
            for slot in set(slots):
                id_ = self._ids[slot]
                assert id_ is not None
                del self._slot_of[id_]
                self._ids[slot] = None
                self._texts[slot] = None
                self._metadata[slot] = {}
                self._columns.clear(slot)
                self._alive[slot] = False
            return len(set(slots))

    # -- reads --------------------------------------------------------------------------------

    def _get(self, ids: list[str]) -> list[Record]:
        with self._lock:
            missing = [i for i in ids if i not in self._slot_of]
            if missing:
                raise NotFoundError(missing)
            out = []
            for id_ in ids:
                slot = self._slot_of[id_]
                out.append(
                    Record(
                        id=id_,
                        vector=self._vectors[slot].copy(),
                        text=self._texts[slot],
                        metadata=dict(self._metadata[slot]),
                    )
                )
            return out

    def _count(self, where: Filter | None) -> int:
        with self._lock:
            if where is None:
                return len(self._slot_of)
            return int(self._candidates(where).sum())

    def _candidates(self, where: Filter | None) -> Mask:
        alive: Mask = self._alive[: self._n]
        if where is None:
            return alive
        return self._columns.evaluate(where, self._n) & alive

    def _search(self, queries: Vectors, k: int, where: Filter | None) -> list[list[Hit]]:
        queries = prepare_queries(queries, self.metric)
        with self._lock:
            mask = self._candidates(where)
            n_match = int(mask.sum())
            if n_match == 0:
                return [[] for _ in range(len(queries))]
            if n_match < _GATHER_FRACTION * self._n:
                rows = np.flatnonzero(mask)
                scores = scores_for(queries, self._vectors[rows], self._sq_norms[rows], self.metric)
                results = [top_k(s, k, rows) for s in scores]
            else:
                scores = scores_for(
                    queries, self._vectors[: self._n], self._sq_norms[: self._n], self.metric
                )
                if n_match < self._n:
                    scores[:, ~mask] = -np.inf
                results = [top_k(s, k) for s in scores]
            return [self._hits(rows, values) for rows, values in results]

    def _hits(self, rows: npt.NDArray[np.int64], scores: npt.NDArray[np.float32]) -> list[Hit]:
        out = []
        for row, score in zip(rows.tolist(), scores.tolist()):
            id_ = self._ids[row]
            assert id_ is not None
            out.append(
                Hit(id=id_, score=score, text=self._texts[row], metadata=dict(self._metadata[row]))
            )
        return out
