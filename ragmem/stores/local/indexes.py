"""The search indexes a LocalVectorStore can use, behind the one seam FlatIndex defines.

The store's VectorTable is the source of truth. An index is told which rows were
written (``added``), deleted (``removed``), renumbered by compaction (``renumbered``)
or loaded from disk (``reset``), and answers ``search(queries, k, mask)``. Indexes
with derived files (the HNSW graph) also ``save`` them beside a snapshot and
``load`` them when the store opens; a missing, stale or corrupt file only costs a
rebuild from the table.

* ``"flat"``: exact search over the float32 table (FlatIndex), or, with ``dtype`` other
  than float32 or ``coarse_dims``, a scan of compact codes with exact rescoring.
* ``"hnsw"``: an HNSW graph (extra ``ragmem[ann]``), exact below its cost threshold.
* ``"auto"``: flat until the store holds ``AUTO_HNSW_ROWS`` live rows, HNSW from then on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from ragmem.errors import ConfigurationError
from ragmem.stores.local.flat import FlatIndex, Ranked
from ragmem.stores.local.quantized import CODE_DTYPES, CodeDtype, QuantizedFlatIndex

if TYPE_CHECKING:
    from pathlib import Path

    from ragmem.stores.local.hnsw import HnswIndex
    from ragmem.stores.local.table import VectorTable
    from ragmem.types import Metric, Vectors

__all__ = [
    "AUTO_HNSW_ROWS",
    "INDEX_KINDS",
    "HnswSearch",
    "IndexKind",
    "QuantizedSearch",
    "make_index",
]

logger = logging.getLogger("ragmem.stores.local")

IndexKind = Literal["flat", "hnsw", "auto"]
INDEX_KINDS: tuple[str, ...] = ("flat", "hnsw", "auto")
# Below this many rows a flat scan answers in about a millisecond, and a graph build
# would cost more than it saves.
AUTO_HNSW_ROWS = 20_000

Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.int64]


def graph_path(directory: Path) -> Path:
    """Where the derived HNSW graph of a store lives."""
    return directory / "graph.cache"


def make_index(
    table: VectorTable,
    metric: Metric,
    *,
    index: IndexKind = "flat",
    dtype: CodeDtype = "float32",
    coarse_dims: int | None = None,
    rescore: int | None = None,
    m: int = 16,
    ef_construction: int = 200,
    ef_search: int = 64,
) -> FlatIndex:
    """Build the index the store's options ask for (options are checked here)."""
    if index not in INDEX_KINDS:
        raise ConfigurationError(f"index must be one of {INDEX_KINDS}, got {index!r}")
    if dtype not in CODE_DTYPES:
        raise ConfigurationError(f"dtype must be one of {CODE_DTYPES}, got {dtype!r}")
    compact = dtype != "float32" or coarse_dims is not None
    if index != "flat" and (compact or rescore is not None):
        raise ConfigurationError(
            "dtype, coarse_dims and rescore apply to flat search; the HNSW graph keeps "
            f"float32 vectors (got index={index!r}, dtype={dtype!r})"
        )
    if index == "flat":
        if not compact:
            return FlatIndex(table, metric)
        codes = QuantizedFlatIndex(
            table.dimensions, metric, dtype=dtype, rescore=rescore, coarse_dims=coarse_dims
        )
        return QuantizedSearch(table, metric, codes)
    from ragmem.stores.local.hnsw import HnswIndex  # needs the ann extra

    graph = HnswIndex(
        table.dimensions, metric, m=m, ef_construction=ef_construction, ef_search=ef_search
    )
    return HnswSearch(table, metric, graph, min_rows=AUTO_HNSW_ROWS if index == "auto" else 0)


class QuantizedSearch(FlatIndex):
    """Flat search over compact codes of the table's rows, rescored exactly from the table."""

    def __init__(self, table: VectorTable, metric: Metric, codes: QuantizedFlatIndex) -> None:
        super().__init__(table, metric)
        self.codes = codes

    def added(self, rows: Rows, vectors: Vectors) -> None:
        self.codes.add(rows, vectors)

    def reset(self) -> None:
        # codes are cheap to derive (a pass over the table), so they are never saved
        live = np.flatnonzero(self.table.live_mask())
        self.codes.rebuild(live, self.table.rows(live))

    def renumbered(self, kept: Rows) -> None:
        self.reset()

    def search(self, queries: Vectors, k: int, mask: Mask | None) -> list[Ranked]:
        table = self.table
        if mask is None and table.live < table.n:
            mask = table.live_mask()
        return self.codes.search(
            queries, k, vectors=table.view().T, sq_norms=table.sq_norms[: table.n], mask=mask
        )


class HnswSearch(FlatIndex):
    """HNSW graph search over the table's rows; exact search is the fallback and the guide.

    With ``min_rows=0`` the graph is always there, so it alone keeps the vectors (the
    table holds none): exact searches gather them from the graph's row-major copy.

    Args:
        table: the store's rows.
        metric: the store's metric.
        graph: the (empty) graph to maintain.
        min_rows: keep no graph below this many live rows (``index="auto"``); once
            built, the graph is kept until the store shrinks below half of it.
    """

    def __init__(
        self, table: VectorTable, metric: Metric, graph: HnswIndex, *, min_rows: int = 0
    ) -> None:
        super().__init__(table, metric)
        self.graph = graph
        self.min_rows = min_rows
        self.active = min_rows == 0
        table.vectors_elsewhere = self.active

    def added(self, rows: Rows, vectors: Vectors) -> None:
        if self.active:
            self.graph.add(rows, vectors)
            self._maybe_compact()
        elif self.table.live >= self.min_rows:
            self.reset()

    def vectors(self, rows: Rows) -> Vectors:
        return self.graph.vectors_of(rows) if self.active else self.table.rows(rows)

    def _live_vectors(self) -> tuple[Rows, Vectors]:
        live = np.flatnonzero(self.table.live_mask())
        if self.table.holds_vectors:
            return live, self.table.rows(live)
        return live, self.graph.vectors_of(live)

    def removed(self, rows: Rows) -> None:
        if self.active:
            self.graph.remove(rows)
            self._maybe_compact()

    def reset(self) -> None:
        """Rebuild the graph from the table's live rows."""
        self.active = self.table.live >= self.min_rows or (
            self.active and self.table.live >= self.min_rows // 2
        )
        live, vectors = self._live_vectors()
        if self.active:
            logger.info("building the HNSW graph over %d rows", len(live))
            self.graph.rebuild(live, vectors)
        else:
            self.graph.rebuild(live[:0], vectors[:0])
        self.table.release_vectors()

    def renumbered(self, kept: Rows) -> None:
        """Rows ``kept[i]`` became row ``i``: relabel the graph's nodes, no rebuild."""
        if self.active and not self.graph.renumber(kept):
            self.reset()

    def save(self, directory: Path, version: str) -> None:
        if self.active:
            self.graph.save(graph_path(directory), generation=version, rows=self.table.n)

    def load(self, directory: Path, version: str) -> bool:
        """Adopt the saved graph of ``version`` if it is whole and current, else rebuild.

        Returns False, as for a rebuild, also when the graph cannot be rebuilt because
        the table was loaded without vectors: the caller then reads them from the truth.
        """
        wanted = self.table.live >= self.min_rows
        path = graph_path(directory)
        if wanted and self.graph.load(path, generation=version, rows=self.table.n):
            self.active = True
            self.table.release_vectors()
            return True
        if not self.table.holds_vectors:
            return False
        self.reset()
        return not self.active

    def _maybe_compact(self) -> None:
        if self.graph.needs_compaction():
            logger.info("HNSW graph has %d tombstones; rebuilding", self.graph.tombstones)
            self.reset()

    def search(self, queries: Vectors, k: int, mask: Mask | None) -> list[Ranked]:
        if not self.active:
            return super().search(queries, k, mask)
        return self.graph.search(queries, k, mask=mask, exact=self._exact)

    def _exact(self, queries: Vectors, k: int, mask: Mask | None) -> list[Ranked]:
        # the graph holds every live row's vector row-major: gathering few rows is cheap there
        return self.exact_search(queries, k, mask, gather=self.graph.vectors_of)
