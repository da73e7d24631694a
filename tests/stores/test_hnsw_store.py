"""LocalVectorStore(index="hnsw" | "auto"): contract suite, recall, updates, graph files."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

pytest.importorskip("faiss")

from ragmem import LocalVectorStore
from ragmem.errors import ConfigurationError
from ragmem.stores.local import indexes
from ragmem.testing import VectorStoreContract
from ragmem.testing.stores import unit_vectors
from ragmem.types import Metadata, Vectors

DIM = 16
# a small ef_construction keeps graph builds quick; search still goes through the graph
GRAPH: dict[str, Any] = {"index": "hnsw", "ef_construction": 32}


@pytest.fixture(autouse=True, scope="module")
def _one_faiss_thread():
    # faiss's OpenMP workers spin-wait, which is slow on a machine busy with other work
    faiss = pytest.importorskip("faiss")
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


class TestHnswStore(VectorStoreContract):
    @pytest.fixture
    def store(self):
        return LocalVectorStore(dimensions=8, **GRAPH)


class TestPersistentHnswStore(VectorStoreContract):
    """On disk with tiny compaction thresholds: graphs are saved and relabelled often."""

    @pytest.fixture
    def store(self, tmp_path):
        store = LocalVectorStore(dimensions=8, path=tmp_path / "store", compact_after=1, **GRAPH)
        yield store
        store.close()


class TestReopenedHnswStore(VectorStoreContract):
    """Every write is read back after closing and reopening (graph loaded or rebuilt)."""

    @pytest.fixture
    def store(self, tmp_path):
        store = _ReopeningStore(tmp_path / "store")
        yield store
        store.close()


class _ReopeningStore(LocalVectorStore):
    def __init__(self, path):
        super().__init__(dimensions=8, path=path, compact_after=1, **GRAPH)

    def _upsert(self, *args):
        super()._upsert(*args)
        self._reopen()

    def _delete(self, ids, where):
        count = super()._delete(ids, where)
        self._reopen()
        return count

    def _reopen(self):
        path = self.path
        self.close()
        _ReopeningStore.__init__(self, path)


def clustered(n: int, seed: int) -> Vectors:
    centres = np.random.default_rng(0).standard_normal((40, DIM)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    unit: Vectors = x / np.linalg.norm(x, axis=1, keepdims=True)
    return unit


def fill(store, n=3000, seed=1):
    vectors = clustered(n, seed)
    ids = [f"d{i}" for i in range(n)]
    store.upsert(ids, vectors, metadata=[{"bucket": i % 1000} for i in range(n)])
    return ids, vectors


def overlap(a, b) -> float:
    hits = sum(len({h.id for h in x} & {h.id for h in y}) for x, y in zip(a, b))
    return hits / max(1, sum(len(y) for y in b))


@pytest.fixture(scope="module")
def pair():
    """The same rows in an HNSW store and in the exact store."""
    graph, flat = LocalVectorStore(DIM, **GRAPH), LocalVectorStore(DIM)
    for store in (graph, flat):
        fill(store)
    return graph, flat


@pytest.mark.parametrize(
    "where",
    [
        None,
        {"bucket": {"$lt": 500}},
        {"bucket": {"$lt": 100}},
        {"bucket": {"$lt": 10}},
        {"bucket": 3},
    ],
)
def test_recall_against_the_exact_store(pair, where):
    graph, flat = pair
    queries = clustered(40, 2)
    got, want = graph.search(queries, k=10, where=where), flat.search(queries, k=10, where=where)
    assert overlap(got, want) >= 0.95
    for hits in got:
        if where is not None:
            assert all(h.metadata["bucket"] < 500 for h in hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_updates_and_deletes_go_through_the_graph():
    store = LocalVectorStore(DIM, **GRAPH)
    ids, vectors = fill(store, 2000)
    moved = clustered(1, 99)
    store.upsert(["d5"], moved)
    assert store.search(moved, k=1)[0][0].id == "d5"
    assert store.search(vectors[5], k=1)[0][0].id != "d5"
    store.delete(ids[1000:1700])  # past the tombstone threshold: the graph is rebuilt
    found = {h.id for hits in store.search(vectors[:300], k=5) for h in hits}
    assert not found & set(ids[1000:1700])
    assert store.search(vectors[1800], k=1)[0][0].id == "d1800"
    store.compact()  # drops deleted rows and relabels graph nodes
    assert store.search(vectors[1800], k=1)[0][0].id == "d1800"
    assert store.count() == 1300


def test_auto_switches_to_the_graph_past_the_threshold(monkeypatch, caplog):
    monkeypatch.setattr(indexes, "AUTO_HNSW_ROWS", 1500)
    caplog.set_level(logging.INFO, "ragmem.stores.local")
    store = LocalVectorStore(DIM, index="auto", ef_construction=40)
    vectors = clustered(2000, 3)
    store.upsert([f"a{i}" for i in range(1000)], vectors[:1000])
    assert "building the HNSW graph" not in caplog.text
    store.upsert([f"a{i}" for i in range(1000, 2000)], vectors[1000:])
    assert "building the HNSW graph over 2000 rows" in caplog.text
    assert store.search(vectors[1500], k=1)[0][0].id == "a1500"


def test_graph_file_is_loaded_and_rebuilt_only_when_needed(tmp_path, caplog):
    caplog.set_level(logging.INFO, "ragmem.stores.local")
    path = tmp_path / "store"
    store = LocalVectorStore(DIM, path=path, **GRAPH)
    _, vectors = fill(store, 2000)
    store.compact()
    queries = clustered(20, 4)
    before = [[h.id for h in hits] for hits in store.search(queries, k=10)]
    store.upsert(["late"], clustered(1, 5))  # in the database only, added to the loaded graph
    store._files.close()  # the process dies: no caches are saved on the way out
    graph_file = path / "graph.cache"

    caplog.clear()
    store = LocalVectorStore(DIM, path=path, **GRAPH)
    assert "building the HNSW graph" not in caplog.text  # loaded, not rebuilt
    assert [[h.id for h in hits] for hits in store.search(queries, k=10)] == before
    assert store.search(clustered(1, 5), k=1)[0][0].id == "late"
    store.close()

    blob = bytearray(graph_file.read_bytes())
    blob[len(blob) // 2] ^= 0x55
    graph_file.write_bytes(bytes(blob))
    caplog.clear()
    store = LocalVectorStore(DIM, path=path, **GRAPH)
    assert "corrupt" in caplog.text
    assert "building the HNSW graph" in caplog.text
    assert overlap(store.search(queries, k=10), [[_Id(i) for i in r] for r in before]) >= 0.95
    assert store.search(clustered(1, 5), k=1)[0][0].id == "late"
    store.close()

    graph_file.unlink()
    store = LocalVectorStore(DIM, path=path, **GRAPH)
    assert store.search(vectors[7], k=1)[0][0].id == "d7"
    store.close()


class _Id:
    def __init__(self, id_):
        self.id = id_


def test_quantized_options_are_for_flat_search():
    with pytest.raises(ConfigurationError, match="flat search"):
        LocalVectorStore(DIM, index="hnsw", dtype="binary")
    with pytest.raises(ConfigurationError, match="index must be one of"):
        LocalVectorStore(DIM, index="ivf")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="dtype must be one of"):
        LocalVectorStore(DIM, dtype="int4")  # type: ignore[arg-type]


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_few_matches_are_searched_exactly_with_the_exact_stores_results(metric):
    # One batch past the renumbering threshold, then replacements and deletes: graph
    # nodes no longer line up with store rows, and the exact path reads the matching
    # rows' vectors from the graph's storage through that mapping.
    graph, flat = (
        LocalVectorStore(DIM, metric=metric, **GRAPH),
        LocalVectorStore(DIM, metric=metric),
    )
    for store in (graph, flat):
        ids, _ = fill(store, n=5000)
        store.upsert(ids[:50], clustered(50, 7), metadata=[{"bucket": 1} for _ in range(50)])
        store.delete(ids[3000:3100])
    for where in ({"bucket": {"$lt": 10}}, {"bucket": 1}, {"bucket": {"$in": [2, 3050]}}):
        got = graph.search(clustered(20, 3), k=10, where=where)
        want = flat.search(clustered(20, 3), k=10, where=where)
        assert [[(h.id, h.score) for h in hits] for hits in got] == [
            [(h.id, h.score) for h in hits] for hits in want
        ]


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_the_graph_alone_keeps_the_vectors(tmp_path, metric):
    vectors = unit_vectors(3000, dim=16, seed=11)
    ids = [str(i) for i in range(3000)]
    meta: list[Metadata] = [{"rare": i % 500 == 0} for i in range(3000)]
    flat = LocalVectorStore(16, metric=metric)
    flat.upsert(ids, vectors, metadata=meta)
    with LocalVectorStore(16, metric=metric, index="hnsw", path=tmp_path) as store:
        store.upsert(ids, vectors, metadata=meta)
        assert store._table.matrix.nbytes == 0  # one copy: the graph's
        queries = unit_vectors(5, dim=16, seed=12)
        # a rare filter is answered exactly, from the graph's copy of the rows
        for got, want in zip(
            store.search(queries, k=4, where={"rare": True}),
            flat.search(queries, k=4, where={"rare": True}),
        ):
            assert [h.id for h in got] == [h.id for h in want]
            assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)
        assert np.array_equal(store.get(["7"])[0].vector, flat.get(["7"])[0].vector)
    (tmp_path / "graph.cache").unlink()  # the table cache holds no vectors: read from SQLite
    with LocalVectorStore(16, metric=metric, index="hnsw", path=tmp_path) as again:
        assert np.array_equal(again.get(["2999"])[0].vector, flat.get(["2999"])[0].vector)
        assert again.count({"rare": True}) == 6
    with LocalVectorStore(16, metric=metric, path=tmp_path, read_only=True) as exact:
        assert np.array_equal(exact.get(["5"])[0].vector, flat.get(["5"])[0].vector)
