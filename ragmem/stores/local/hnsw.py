"""An HNSW graph over the store's rows (faiss ``IndexHNSWFlat``), derived and rebuildable.

The graph maps its nodes to store rows. Updates never rebuild it: a replaced row gets a
new node and its old node becomes a tombstone, a deleted row's node becomes a
tombstone, and tombstones are excluded inside the traversal by an id selector. Once
tombstones pass ``compact_fraction`` of the nodes, :meth:`HnswIndex.needs_compaction`
says so and the owner rebuilds the graph from its live rows.

faiss is used because its id selector filters inside the C++ traversal and it installs
from wheels everywhere. Renumbering the nodes breadth-first after a large batch
(``layout``) and huge pages under the graph's arrays (``hugepages``) make traversals
faster (see docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ragmem._storage.cache_file import read_cache, write_cache
from ragmem.errors import ConfigurationError, MissingDependencyError
from ragmem.stores.local import hugepages
from ragmem.stores.local.layout import bfs_order
from ragmem.stores.local.nodes import NodeRows

try:
    import faiss as _faiss
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(package="faiss-cpu", extra="ann") from exc

faiss: Any = _faiss  # faiss's SWIG stubs lack most of the HNSW surface
_ptr = faiss.swig_ptr

if TYPE_CHECKING:
    from pathlib import Path

    from ragmem.types import Metric, Vectors

__all__ = ["HnswIndex"]

logger = logging.getLogger("ragmem.stores.local")

Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float32]
Result = tuple[Rows, Scores]
Exact = Callable[["Vectors", int, "Mask | None"], list[Result]]
# a faiss id selector, the bitmap it points into, and search parameters by ef
Selector = tuple[Any, np.ndarray, dict[int, Any]]

_FORMAT = "ragmem-hnsw-faiss/1"
# Widened ef never exceeds this; past it, exact search over the matching rows is cheaper.
_MAX_EF = 4096
# Batches this large are followed by a breadth-first renumbering of the graph: below
# it, a graph stays in the CPU caches and node order hardly matters.
_REORDER_MIN = 4096


class HnswIndex:
    """Approximate top-k search over store rows with an HNSW graph.

    Vectors passed in must already be prepared as the store keeps them (unit length
    for ``cosine``); queries likewise. Scores follow the store's convention: higher is
    better, ``l2`` scores are negated squared distances.

    Args:
        dimensions: vector width.
        metric: ``"cosine"``, ``"dot"`` or ``"l2"``.
        m: graph degree (neighbours per node and layer; layer 0 has ``2 * m``).
        ef_construction: candidate list size while building.
        ef_search: candidate list size while searching (raised to ``k`` when smaller,
            and widened for filters).
        compact_fraction: tombstone share of the nodes past which compaction is due.
    """

    def __init__(
        self,
        dimensions: int,
        metric: Metric,
        *,
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        compact_fraction: float = 0.25,
    ) -> None:
        for name, value in (("m", m), ("ef_construction", ef_construction)):
            if not isinstance(value, int) or value < 2:
                raise ConfigurationError(f"{name} must be an integer >= 2, got {value!r}")
        if not 0.0 < compact_fraction <= 1.0:
            raise ConfigurationError(
                f"compact_fraction must be in (0, 1], got {compact_fraction!r}"
            )
        self.dimensions = dimensions
        self.metric = metric
        self.m = m
        self.ef_construction = ef_construction
        self._ef_search = self._check_ef(ef_search)
        self.compact_fraction = compact_fraction
        self._clear()

    def _clear(self) -> None:
        """An empty graph."""
        self._graph = self._new_graph()
        self._map = NodeRows()
        self._alive_selector: Selector | None = None
        self._last_filtered: _Filtered | None = None  # the last filter's nodes
        self._advised: dict[str, tuple[int, int]] = {}  # huge-page regions asked for

    @staticmethod
    def _check_ef(ef: int) -> int:
        if not isinstance(ef, int) or ef < 1:
            raise ConfigurationError(f"ef_search must be a positive integer, got {ef!r}")
        return ef

    def _new_graph(self) -> Any:
        kind = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        graph = faiss.IndexHNSWFlat(self.dimensions, self.m, kind)
        graph.hnsw.efConstruction = self.ef_construction
        graph.hnsw.efSearch = self._ef_search
        return graph

    # -- state --------------------------------------------------------------------------------

    @property
    def ef_search(self) -> int:
        """Default candidate list size while searching."""
        return self._ef_search

    @ef_search.setter
    def ef_search(self, ef: int) -> None:
        self._ef_search = self._check_ef(ef)
        self._graph.hnsw.efSearch = self._ef_search

    @property
    def nodes(self) -> int:
        """Graph nodes, tombstones included."""
        return self._map.nodes

    @property
    def tombstones(self) -> int:
        """Nodes whose row was deleted or replaced."""
        return self._map.tombstones

    def __len__(self) -> int:
        return self.nodes - self.tombstones

    def needs_compaction(self) -> bool:
        """Whether tombstones passed ``compact_fraction`` of the nodes (rebuild is due)."""
        return self.tombstones > 0 and self.tombstones >= self.compact_fraction * self.nodes

    # -- writes -------------------------------------------------------------------------------

    def add(self, rows: Rows, vectors: Vectors) -> None:
        """Insert or replace store ``rows`` with ``vectors`` (one per row, rows unique)."""
        rows = np.asarray(rows, np.int64)
        if len(rows) == 0:
            return
        self._graph.add(np.ascontiguousarray(vectors, np.float32))
        self._map.add(rows)
        # the new nodes are in neither cached bitmap
        self._alive_selector = self._last_filtered = None
        if len(rows) >= _REORDER_MIN and 2 * len(rows) >= self.nodes:
            # a batch that (at least) doubled the graph: renumbering it all costs about
            # what the batch did, so this stays a constant share of the build
            self._reorder()
        self._use_huge_pages()

    def remove(self, rows: Rows) -> None:
        """Forget store ``rows`` (their nodes become tombstones); unknown rows are ignored."""
        if self._map.remove(np.asarray(rows, np.int64)):
            self._alive_selector = self._last_filtered = None

    def rebuild(self, rows: Rows, vectors: Vectors) -> None:
        """Drop the graph and build it anew from the live ``rows`` and their ``vectors``."""
        self._clear()
        self.add(rows, vectors)

    def _reorder(self) -> None:
        """Renumber the nodes breadth-first (see ``layout``); rows keep their nodes' links."""
        order = bfs_order(self._graph.hnsw, self.nodes)
        self._graph.permute_entries(order)
        self._map.permute(order)
        self._alive_selector = self._last_filtered = None

    def _use_huge_pages(self) -> None:
        """Ask for 2 MiB pages under the graph's vectors and links (see ``hugepages``)."""
        storage = faiss.downcast_index(self._graph.storage)
        for name, vector in (("codes", storage.codes), ("links", self._graph.hnsw.neighbors)):
            if vector.size():
                array = faiss.rev_swig_ptr(vector.data(), vector.size())
                hugepages.advise_once(self._advised, name, array)

    def renumber(self, kept: Rows) -> bool:
        """Relabel rows after the store dropped its deleted rows: ``kept[i]`` is now row ``i``.

        Returns:
            ``False`` (index unchanged) when a live node's row is not in ``kept``, which
            means the index was out of step with the store and must be rebuilt.
        """
        return self._map.renumber(np.asarray(kept, np.int64))

    # -- search -------------------------------------------------------------------------------

    def search(
        self,
        queries: Vectors,
        k: int,
        *,
        mask: Mask | None = None,
        exact: Exact | None = None,
        ef: int | None = None,
    ) -> list[Result]:
        """Top ``k`` rows per query as ``(rows, scores)``, best first.

        Args:
            queries: prepared queries, shape (n, d).
            k: results per query.
            mask: candidate rows (the filter's matches over the store's rows); ``None``
                means every row the index holds.
            exact: exact search ``(queries, k, mask) -> results`` over the store's rows,
                used when that is cheaper than the graph or the graph falls short.
            ef: candidate list size for this call instead of ``ef_search``.

        The filter's selectivity is known exactly from ``mask``. When so few rows match
        that visiting them all costs less than the widened graph search would, the
        search is exact over just those rows; otherwise the filter runs inside the
        graph traversal as an id selector, with ef widened by ``1 / selectivity``.
        """
        ef = max(self.ef_search if ef is None else self._check_ef(ef), k)
        if self.nodes == 0:
            return [_empty() for _ in range(len(queries))]
        if mask is None:
            # a graph search computes about ef * m distances; below that, scan every row
            if exact is not None and self.nodes - self.tombstones <= ef * self.m:
                return exact(queries, k, None)
            if self.tombstones == 0:
                return self._graph_search(queries, k, ef, None)
            selector = self._alive_selector or self._selector(self._map.alive())
            self._alive_selector = selector
            matching = self.nodes - self.tombstones
        else:
            filtered = self._filtered(mask)
            matching = filtered.matching
            if matching == 0:
                return [_empty() for _ in range(len(queries))]
            widened = min(math.ceil(ef * self.nodes / matching), _MAX_EF)
            if exact is not None and (
                matching <= widened * self.m or widened == _MAX_EF or matching <= k
            ):
                return exact(queries, k, mask)
            if filtered.selector is None:
                filtered.selector = self._selector(filtered.node_ok)
            selector = filtered.selector
        widened = min(math.ceil(ef * self.nodes / matching), _MAX_EF)
        results = self._graph_search(queries, k, widened, selector)
        if exact is not None and any(len(r) < min(k, matching) for r, _ in results):
            # the filter cut the graph into pieces the traversal could not reach
            return exact(queries, k, mask)
        return results

    def vectors_of(self, rows: Rows) -> Vectors:
        """The ``(m, d)`` vectors of live store ``rows``, copied from the graph's (row-major)
        storage, which is the store's only copy of them.

        Raises:
            KeyError: a row has no live node (the index is out of step with the store).
        """
        nodes = self._map.nodes_of(rows)
        storage = faiss.downcast_index(self._graph.storage)
        flat = faiss.rev_swig_ptr(storage.get_xb(), self.nodes * self.dimensions)
        vectors: Vectors = flat.reshape(self.nodes, self.dimensions)[nodes]
        return vectors

    def _filtered(self, mask: Mask) -> _Filtered:
        """The graph nodes ``mask`` selects (the last mask's are kept: filters repeat)."""
        last = self._last_filtered
        if last is not None and last.mask is mask and not mask.flags.writeable:
            return last  # the same read-only array: the store has not written since
        node_ok = self._map.selected(mask)
        filtered = _Filtered(mask, node_ok, int(np.count_nonzero(node_ok)))
        self._last_filtered = filtered
        return filtered

    def _selector(self, node_ok: Mask) -> Selector:
        bits = np.packbits(node_ok, bitorder="little")
        # faiss keeps a raw pointer to ``bits``: the tuple keeps the buffer alive
        return faiss.IDSelectorBitmap(len(node_ok), faiss.swig_ptr(bits)), bits, {}

    def _graph_search(
        self, queries: Vectors, k: int, ef: int, selector: Selector | None
    ) -> list[Result]:
        params = None
        if selector is not None or ef != self._ef_search:
            # per-call parameters leave the shared graph untouched for concurrent readers
            params = selector[2].get(ef) if selector is not None else None
            if params is None:
                params = faiss.SearchParametersHNSW()
                params.efSearch = ef
                if selector is not None:
                    params.sel = selector[0]
                    selector[2][ef] = params  # faiss only reads them: reusable
        n = len(queries)
        queries = np.ascontiguousarray(queries, np.float32)
        distances = np.empty((n, k), np.float32)
        nodes = np.empty((n, k), np.int64)
        # faiss's low-level entry point: its Python ``search`` wrapper only re-checks
        # what is already known here and allocates these same two arrays
        self._graph.search_c(n, _ptr(queries), k, _ptr(distances), _ptr(nodes), params)
        if self.metric == "l2":
            np.negative(distances, out=distances)
        rows = self._map.rows_of(nodes)
        if n == 1 and nodes[0, -1] >= 0:
            return [(rows[0], distances[0])]  # single query: the common, hot case
        if nodes[:, -1].min() >= 0:
            return list(zip(rows, distances))
        # faiss pads with -1 when fewer than k nodes qualify
        found = nodes >= 0
        return [(r[f], s[f]) for r, s, f in zip(rows, distances, found)]

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: Path, *, generation: int | str, rows: int) -> None:
        """Write the graph to ``path`` as a derived file covering store state ``generation``.

        Args:
            path: destination (replaced atomically).
            generation: the store's write generation this graph reflects.
            rows: the store's row count at that generation.
        """
        fields = self._fields(generation, rows)
        arrays: dict[str, np.ndarray] = {
            "graph": faiss.serialize_index(self._graph),
            "node_row": self._map.node_row[: self.nodes],
            "node_alive": self._map.alive(),
        }
        write_cache(path, fields, arrays)

    def load(self, path: Path, *, generation: int | str, rows: int) -> bool:
        """Replace this index with the graph saved at ``path`` if it covers ``generation``.

        Returns:
            ``True`` when loaded; ``False`` when the file is missing, stale or corrupt
            (this index is then unchanged and the caller rebuilds it from its rows).
        """
        found = read_cache(path, self._fields(generation, rows))
        if found is None:
            return False
        _, arrays = found
        try:
            graph = faiss.deserialize_index(arrays["graph"])
        except RuntimeError as exc:  # a whole file that faiss cannot parse: rebuild
            logger.warning("HNSW graph %s is malformed (%s); rebuilding", path, exc)
            return False
        node_row, node_alive = arrays["node_row"], arrays["node_alive"]
        nodes = NodeRows.saved(node_row, node_alive, rows)
        if (
            nodes is None
            or not isinstance(graph, faiss.IndexHNSWFlat)
            or graph.d != self.dimensions
            or not graph.ntotal == len(node_row) == len(node_alive)
        ):
            return False
        graph.hnsw.efSearch = self._ef_search
        self._graph, self._map = graph, nodes
        self._advised = {}
        self._use_huge_pages()
        self._alive_selector = self._last_filtered = None
        return True

    def _fields(self, generation: int | str, rows: int) -> dict[str, Any]:
        shape = {"dimensions": self.dimensions, "metric": self.metric, "m": self.m}
        return {"format": _FORMAT, **shape, "generation": generation, "rows": rows}


def _empty() -> Result:
    return np.empty(0, np.int64), np.empty(0, np.float32)


@dataclass(slots=True)
class _Filtered:
    """The nodes one candidate mask selects, and the faiss selector built for them."""

    mask: Mask
    node_ok: Mask
    matching: int
    selector: Selector | None = None
