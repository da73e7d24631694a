"""Node order for an HNSW graph: breadth-first, so that neighbours sit close in memory.

A graph search spends most of its time fetching the vectors and neighbour lists of
nodes it reaches over links. faiss stores nodes in insertion order, so linked nodes
are scattered over the whole index; renumbering them in breadth-first order of the
bottom layer puts a node's neighbours near it, and the search runs measurably faster
(``benchmarks/ann.py``) while visiting exactly the same nodes in the same order.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["bfs_order"]

Rows = npt.NDArray[np.int64]
# neighbour lists gathered per block, so a large graph needs no (n, 2m) int64 index array
_BLOCK = 65536


def bfs_order(hnsw: Any, nodes: int) -> Rows:
    """Nodes in breadth-first order over the bottom layer, from the entry point.

    Args:
        hnsw: a faiss ``HNSW`` structure (``index.hnsw``) holding ``nodes`` nodes.
        nodes: node count.

    Returns:
        A permutation of ``0..nodes-1``: position ``i`` holds the node to become ``i``
        (the form faiss ``permute_entries`` takes). Nodes no link reaches come last.
    """
    import faiss  # the ann extra, present whenever a graph exists

    neighbors = faiss.vector_to_array(hnsw.neighbors)
    offsets = faiss.vector_to_array(hnsw.offsets).astype(np.int64)
    levels = faiss.vector_to_array(hnsw.cum_nneighbor_per_level).astype(np.int64)
    columns = np.arange(levels[0], levels[1], dtype=np.int64)  # bottom-layer slots
    links = np.empty((nodes, len(columns)), neighbors.dtype)
    for start in range(0, nodes, _BLOCK):
        end = min(nodes, start + _BLOCK)
        links[start:end] = neighbors[offsets[start:end, None] + columns]
    order = np.empty(nodes, np.int64)
    seen = np.zeros(nodes, np.bool_)
    entry = int(hnsw.entry_point)
    filled = 0
    # later roots only for nodes no link reached
    for root in itertools.chain([entry], range(nodes)):
        if seen[root]:
            continue
        frontier = np.array([root], np.int64)
        seen[root] = True
        order[filled] = root
        filled += 1
        while len(frontier):
            reached = links[frontier].ravel()
            reached = reached[reached >= 0]
            reached = reached[~seen[reached]]
            # keep each node's first appearance, in order: exactly a queue-based BFS
            _, first = np.unique(reached, return_index=True)
            frontier = reached[np.sort(first)].astype(np.int64)
            seen[frontier] = True
            order[filled : filled + len(frontier)] = frontier
            filled += len(frontier)
        if filled == nodes:
            break
    return order
