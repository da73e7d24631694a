"""Which node of an HNSW graph holds which store row, and which nodes are tombstones.

The graph only grows: a written row gets a new node, and the node it had before (if
any) becomes a tombstone, as does a deleted row's. Nodes are renumbered only when the
whole graph is (``permute``); compaction renumbers rows (``renumber``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["NodeRows"]

Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.int64]


class NodeRows:
    """The map between graph nodes and store rows, with a live flag per node.

    Attributes:
        nodes: graph nodes, tombstones included.
        tombstones: nodes whose row was deleted or replaced.
        identity: node ``i`` holds row ``i`` and no node is a tombstone.
    """

    def __init__(self) -> None:
        # arrays grow ahead of ``nodes`` (and of the rows) so appends amortise
        self.node_row = np.empty(0, np.int64)
        self.node_alive = np.empty(0, np.bool_)
        self.row_node = np.empty(0, np.int64)  # -1 where a row has no node
        self.nodes = self.tombstones = 0
        self.identity = True

    @classmethod
    def saved(cls, node_row: Rows, node_alive: Mask, rows: int) -> NodeRows | None:
        """The map saved as ``node_row`` and ``node_alive`` over a store of ``rows`` rows;
        None when a live node's row is past the store's last row."""
        live = np.flatnonzero(node_alive)
        if len(live) and int(node_row[live].max()) >= rows:
            return None
        saved = cls()
        saved.node_row, saved.node_alive = node_row, node_alive
        saved.row_node = np.full(rows, -1, np.int64)
        saved.row_node[node_row[live]] = live
        saved.nodes = len(node_row)
        saved.tombstones = saved.nodes - len(live)
        saved.identity = saved.tombstones == 0 and np.array_equal(node_row, np.arange(saved.nodes))
        return saved

    def alive(self) -> Mask:
        """The live flag of every node."""
        return self.node_alive[: self.nodes]

    def add(self, rows: Rows) -> None:
        """Give the (unique, non-empty) ``rows`` the next nodes, in order."""
        self.remove(rows)
        start, end = self.nodes, self.nodes + len(rows)
        if self.identity and not (rows[0] == start and np.array_equal(rows, np.arange(start, end))):
            self.identity = False
        self.node_row = _grown(self.node_row, end, 0)
        self.node_alive = _grown(self.node_alive, end, False)
        self.row_node = _grown(self.row_node, int(rows.max()) + 1, -1)
        self.node_row[start:end] = rows
        self.node_alive[start:end] = True
        self.row_node[rows] = np.arange(start, end, dtype=np.int64)
        self.nodes = end

    def remove(self, rows: Rows) -> bool:
        """Make the nodes of ``rows`` tombstones (rows without one are skipped).

        Returns:
            Whether any node became a tombstone.
        """
        known = rows[rows < len(self.row_node)]
        nodes = self.row_node[known]
        nodes = nodes[nodes >= 0]
        if len(nodes) == 0:
            return False
        self.node_alive[nodes] = False
        self.row_node[self.node_row[nodes]] = -1
        self.tombstones += len(nodes)
        self.identity = False
        return True

    def permute(self, order: Rows) -> None:
        """Node ``order[i]`` became node ``i`` (the graph was renumbered)."""
        n = self.nodes
        self.node_row[:n] = self.node_row[order]
        self.node_alive[:n] = self.node_alive[order]
        live = np.flatnonzero(self.node_alive[:n])
        self.row_node[self.node_row[live]] = live
        self.identity = False

    def renumber(self, kept: Rows) -> bool:
        """Relabel rows after the store dropped its deleted rows: ``kept[i]`` is now row ``i``.

        Returns:
            ``False`` (map unchanged) when a live node's row is not in ``kept``.
        """
        live = np.flatnonzero(self.alive())
        old = self.node_row[live]
        new = np.searchsorted(kept, old)
        if len(live) and (new.max() >= len(kept) or not np.array_equal(kept[new], old)):
            return False
        self.node_row[: self.nodes][~self.alive()] = -1
        self.node_row[live] = new
        self.row_node = np.full(len(kept), -1, np.int64)
        self.row_node[new] = live
        self.identity = self.tombstones == 0 and np.array_equal(
            self.node_row[: self.nodes], np.arange(self.nodes)
        )
        return True

    def rows_of(self, nodes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The rows of ``nodes`` (any shape; entries of -1 map to garbage)."""
        return nodes if self.identity else self.node_row[nodes]

    def nodes_of(self, rows: Rows) -> Rows:
        """The live nodes of ``rows``.

        Raises:
            KeyError: a row has no live node (the graph is out of step with the store).
        """
        if len(rows) and int(rows.max()) >= len(self.row_node):
            raise KeyError("rows past the graph's last node")
        nodes = self.row_node[rows]
        if len(nodes) and nodes.min() < 0:
            raise KeyError("rows without a live graph node")
        return nodes

    def selected(self, mask: Mask) -> Mask:
        """Per node, whether it is live and its row is among the rows ``mask`` selects."""
        if self.identity and len(mask) >= self.nodes:
            return mask[: self.nodes]  # skips a gather over every node
        return self.alive() & _take(mask, self.node_row[: self.nodes])


def _grown(array: np.ndarray, size: int, fill: object) -> np.ndarray:
    """``array``, or a copy grown by half (new entries ``fill``) if shorter than ``size``."""
    if size <= len(array):
        return array
    grown = np.full(max(size, int(len(array) * 1.5) + 16), fill, array.dtype)
    grown[: len(array)] = array
    return grown


def _take(mask: Mask, rows: Rows) -> Mask:
    # rows past the end of the mask are not candidates
    taken: Mask = _grown(mask, int(rows.max()) + 1 if len(rows) else 0, False)[rows]
    return taken
