"""Breadth-first renumbering of the HNSW graph: same results, rows still mapped right."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss")

import ragmem.stores.local.hnsw as hnsw_module
from ragmem.stores.local.flat import Ranked, prepare_queries
from ragmem.stores.local.hnsw import HnswIndex
from ragmem.stores.local.layout import bfs_order

DIM = 16


def _data(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).standard_normal((40, DIM)).astype(np.float32)
    x = centres[rng.integers(0, 40, n)] + 0.5 * rng.standard_normal((n, DIM))
    return prepare_queries(x.astype(np.float32), "cosine")


def _build(monkeypatch, reorder: bool, vectors: np.ndarray, rows: np.ndarray) -> HnswIndex:
    monkeypatch.setattr(hnsw_module, "_REORDER_MIN", 100 if reorder else 10**9)
    index = HnswIndex(DIM, "cosine", m=8, ef_construction=40, ef_search=16)
    index.add(rows, vectors)
    return index


def _same(a: list[Ranked], b: list[Ranked]) -> None:
    assert len(a) == len(b)
    for (ra, sa), (rb, sb) in zip(a, b):
        assert ra.tolist() == rb.tolist()
        np.testing.assert_array_equal(sa, sb)


def test_renumbered_graph_returns_what_the_original_returns(monkeypatch, tmp_path):
    vectors, queries = _data(2000, 1), _data(40, 2)
    rows = np.arange(7, 2007)  # rows differ from node numbers on purpose
    plain = _build(monkeypatch, False, vectors, rows)
    ordered = _build(monkeypatch, True, vectors, rows)
    _same(plain.search(queries, 10), ordered.search(queries, 10))
    mask = np.zeros(2007, np.bool_)
    mask[rows[::2]] = True
    _same(plain.search(queries, 10, mask=mask), ordered.search(queries, 10, mask=mask))
    for index in (plain, ordered):
        index.remove(rows[:50])
        index.add(rows[60:61], vectors[0:1])  # row 67 now holds row 7's vector
    _same(plain.search(queries, 10), ordered.search(queries, 10))
    hits = ordered.search(vectors[0:1], 3)[0][0].tolist()
    assert 67 in hits
    assert not set(hits) & set(rows[:50].tolist())
    path = tmp_path / "graph"
    ordered.save(path, generation=1, rows=2007)
    loaded = HnswIndex(DIM, "cosine", m=8, ef_search=16)
    assert loaded.load(path, generation=1, rows=2007)
    _same(ordered.search(queries, 10), loaded.search(queries, 10))


def test_small_batches_keep_insertion_order(monkeypatch):
    vectors = _data(400, 3)
    index = _build(monkeypatch, True, vectors[:300], np.arange(300))
    before = index._map.node_row[: index.nodes].copy()
    index.add(np.arange(300, 400), vectors[300:])  # a third of the graph: no renumbering
    assert index._map.node_row[:300].tolist() == before.tolist()
    assert index._map.node_row[300:400].tolist() == list(range(300, 400))


def test_bfs_order_is_a_permutation_from_the_entry_point():
    import faiss

    vectors = _data(3000, 4)
    graph = faiss.IndexHNSWFlat(DIM, 8, faiss.METRIC_INNER_PRODUCT)
    graph.add(vectors)
    order = bfs_order(graph.hnsw, graph.ntotal)
    assert order[0] == graph.hnsw.entry_point
    assert np.array_equal(np.sort(order), np.arange(3000))
