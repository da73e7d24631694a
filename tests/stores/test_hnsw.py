"""HnswIndex: approximate search, incremental updates, filtered search, derived-file persistence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("faiss")

from ragmem import LocalVectorStore
from ragmem._storage.cache_file import read_cache, write_cache
from ragmem.errors import ConfigurationError
from ragmem.stores.local.flat import prepare_queries, top_k
from ragmem.stores.local.hnsw import HnswIndex

DIM = 16


@pytest.fixture(autouse=True, scope="module")
def _one_faiss_thread():
    # faiss's OpenMP workers spin-wait, which is slow on a machine busy with other work
    faiss = pytest.importorskip("faiss")
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def clustered(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    centres = np.random.default_rng(0).standard_normal((60, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, len(centres), n)] + 0.5 * rng.standard_normal((n, dim))
    return prepare_queries(x.astype(np.float32), "cosine")


def scores_for(queries, vectors, sq, metric):
    scores = queries @ vectors.T
    if metric == "l2":
        scores = 2 * scores - sq[None, :] - np.einsum("ij,ij->i", queries, queries)[:, None]
    return scores.astype(np.float32)


def exact_search(vectors, metric="cosine", live=None):
    """The exact fallback HnswIndex is given, as the store gives its flat search."""

    def search(queries, k, mask):
        mask = live if mask is None else mask
        return exact(queries, vectors, k, metric, mask, rows_and_scores=True)

    return search


def exact(queries, vectors, k, metric="cosine", mask=None, rows_and_scores=False):
    sq = np.einsum("ij,ij->i", vectors, vectors)
    scores = scores_for(queries, vectors, sq, metric)
    if mask is not None:
        scores[:, ~mask[: len(vectors)]] = -np.inf
    if rows_and_scores:
        return [top_k(s, k) for s in scores]
    return [top_k(s, k)[0] for s in scores]


def recall(found, truth) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth))
    return hits / max(1, sum(len(t) for t in truth))


@pytest.fixture(scope="module")
def data():
    return clustered(3000, seed=1), clustered(50, seed=2)


@pytest.fixture(scope="module")
def built(data):
    vectors, _ = data
    index = HnswIndex(DIM, "cosine", m=16, ef_construction=100)
    index.add(np.arange(len(vectors)), vectors)
    return index


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_recall_against_exact_search(metric):
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((1500, DIM)).astype(np.float32)
    queries = rng.standard_normal((40, DIM)).astype(np.float32)
    if metric == "cosine":
        vectors, queries = prepare_queries(vectors, metric), prepare_queries(queries, metric)
    index = HnswIndex(DIM, metric, ef_construction=100, ef_search=128)
    index.add(np.arange(len(vectors)), vectors)
    results = index.search(queries, 10)
    assert recall([r for r, _ in results], exact(queries, vectors, 10, metric)) >= 0.97
    sq = np.einsum("ij,ij->i", vectors, vectors)
    for (rows, scores), query in zip(results, queries):
        want = scores_for(query[None], vectors[rows], sq[rows], metric)[0]
        np.testing.assert_allclose(scores, want, rtol=1e-4, atol=1e-4)
        assert np.all(np.diff(scores) <= 1e-6)  # best first


def test_replace_moves_the_row_to_its_new_vector(data):
    vectors, _ = data
    index = HnswIndex(DIM, "cosine", ef_construction=64)
    index.add(np.arange(500), vectors[:500])
    index.add(np.array([7]), vectors[900:901])  # row 7 now holds another vector
    assert index.tombstones == 1
    assert len(index) == 500
    rows, _ = index.search(vectors[900:901], 1)[0]
    assert rows.tolist() == [7]
    rows, scores = index.search(vectors[7:8], 5)[0]
    for row, score in zip(rows.tolist(), scores.tolist()):
        if row == 7:  # still found, but only through the vector it holds now
            assert score == pytest.approx(float(vectors[900] @ vectors[7]), abs=1e-5)


def test_removed_rows_never_come_back_and_compaction_is_flagged(data):
    vectors, queries = data
    index = HnswIndex(DIM, "cosine", ef_construction=64, compact_fraction=0.3)
    index.add(np.arange(1000), vectors[:1000])
    gone = np.arange(0, 1000, 4)
    index.remove(gone)
    index.remove(np.array([5000]))  # unknown rows are ignored
    assert not index.needs_compaction()
    live = np.ones(1000, bool)
    live[gone] = False
    found = [r for r, _ in index.search(queries, 10)]
    assert not set(np.concatenate(found).tolist()) & set(gone.tolist())
    assert recall(found, exact(queries, vectors[:1000], 10, mask=live)) >= 0.95
    index.remove(np.arange(1, 1000, 4))
    assert index.needs_compaction()
    rows = np.flatnonzero(live & (np.arange(1000) % 4 != 1))
    index.rebuild(rows, vectors[rows])
    assert index.tombstones == 0
    assert len(index) == len(rows)
    assert not index.needs_compaction()


@pytest.mark.parametrize("selectivity", [0.5, 0.1, 0.01, 0.001])
def test_filtered_search_keeps_recall(built, data, selectivity):
    vectors, queries = data
    mask = np.random.default_rng(4).random(len(vectors)) < selectivity
    mask[0] = True  # at least one match
    results = built.search(queries, 10, mask=mask, exact=exact_search(vectors))
    found = [r for r, _ in results]
    for rows in found:
        assert mask[rows].all()
        assert len(rows) == min(10, int(mask.sum()))
    assert recall(found, exact(queries, vectors, 10, mask=mask)) >= 0.95


def test_filter_inside_the_traversal_without_exact_fallback(built, data):
    vectors, queries = data
    mask = np.arange(len(vectors)) % 2 == 0
    found = [r for r, _ in built.search(queries, 10, mask=mask)]  # no vectors: graph only
    assert all(mask[rows].all() for rows in found)
    assert recall(found, exact(queries, vectors, 10, mask=mask)) >= 0.95


def test_tiny_matches_are_searched_exactly(built, data):
    vectors, queries = data
    mask = np.zeros(len(vectors), bool)
    mask[[3, 50, 999, 2000]] = True
    for (rows, _), want in zip(
        built.search(queries, 3, mask=mask, exact=exact_search(vectors)),
        exact(queries, vectors, 3, mask=mask),
    ):
        assert rows.tolist() == want.tolist()
    nothing = np.zeros(len(vectors), bool)
    empty = built.search(queries[:2], 3, mask=nothing, exact=exact_search(vectors))
    assert [len(r) for r, _ in empty] == [0, 0]


def test_empty_index_and_bad_options():
    index = HnswIndex(DIM, "cosine")
    assert [len(r) for r, _ in index.search(np.ones((2, DIM), np.float32), 3)] == [0, 0]
    with pytest.raises(ConfigurationError):
        HnswIndex(DIM, "cosine", m=1)
    with pytest.raises(ConfigurationError):
        HnswIndex(DIM, "cosine", ef_search=0)
    with pytest.raises(ConfigurationError):
        HnswIndex(DIM, "cosine", compact_fraction=0.0)


def test_save_and_load_round_trip(tmp_path, data):
    vectors, queries = data
    index = HnswIndex(DIM, "cosine", ef_construction=64)
    index.add(np.arange(800), vectors[:800])
    index.remove(np.array([1, 2, 3]))
    path = tmp_path / "graph.hnsw"
    index.save(path, generation=7, rows=800)
    loaded = HnswIndex(DIM, "cosine")
    assert loaded.load(path, generation=7, rows=800)
    assert loaded.tombstones == 3
    assert len(loaded) == 797
    for (a, sa), (b, sb) in zip(index.search(queries, 10), loaded.search(queries, 10)):
        assert a.tolist() == b.tolist()
        np.testing.assert_array_equal(sa, sb)
    # updates keep working on a loaded graph
    loaded.add(np.array([800]), vectors[800:801])
    assert loaded.search(vectors[800:801], 1)[0][0].tolist() == [800]


def test_stale_corrupt_or_missing_graph_is_not_loaded(tmp_path, data):
    vectors, _ = data
    index = HnswIndex(DIM, "cosine", ef_construction=32)
    index.add(np.arange(300), vectors[:300])
    path = tmp_path / "graph.hnsw"
    fresh = HnswIndex(DIM, "cosine")
    assert not fresh.load(path, generation=1, rows=300)  # missing
    index.save(path, generation=1, rows=300)
    assert not fresh.load(path, generation=2, rows=300)  # stale generation
    assert not fresh.load(path, generation=1, rows=301)  # another row count
    assert not HnswIndex(DIM, "l2").load(path, generation=1, rows=300)  # another metric
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    assert not fresh.load(path, generation=1, rows=300)  # checksum mismatch
    path.write_bytes(bytes(blob[: len(blob) // 3]))
    assert not fresh.load(path, generation=1, rows=300)  # truncated
    path.write_bytes(b"not a graph")
    assert not fresh.load(path, generation=1, rows=300)
    assert len(fresh) == 0  # a failed load leaves the index untouched


operations = st.lists(
    st.tuples(st.sampled_from(["add", "remove"]), st.lists(st.integers(0, 59), max_size=12)),
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, k=st.integers(1, 8), use_mask=st.booleans())
def test_any_update_sequence_returns_live_rows_with_exact_scores(ops, k, use_mask):
    vectors = clustered(60, seed=9)
    index = HnswIndex(DIM, "cosine", m=4, ef_construction=16, ef_search=8)
    store = np.zeros((60, DIM), np.float32)
    live = np.zeros(60, bool)
    rng = np.random.default_rng(len(ops))
    for op, rows in ops:
        rows = np.unique(np.asarray(rows, np.int64))
        if op == "add":
            fresh = vectors[rng.integers(0, 60, len(rows))]
            store[rows] = fresh
            live[rows] = True
            index.add(rows, fresh)
        else:
            live[rows] = False
            index.remove(rows)
    assert len(index) == int(live.sum())
    mask = live & (np.arange(60) % 3 != 0) if use_mask else None
    candidates = live if mask is None else mask
    query = vectors[:1]
    rows, scores = index.search(query, k, mask=mask, exact=exact_search(store, live=live))[0]
    assert len(rows) == min(k, int(candidates.sum()))
    assert len(set(rows.tolist())) == len(rows)
    assert candidates[rows].all()
    np.testing.assert_allclose(scores, (store[rows] @ query[0]), rtol=1e-5, atol=1e-5)


def test_a_whole_graph_file_with_malformed_contents_is_rebuilt(tmp_path, data):
    vectors, _ = data
    index = HnswIndex(DIM, "cosine", ef_construction=32)
    index.add(np.arange(300), vectors[:300])
    path = tmp_path / "graph.cache"
    index.save(path, generation=1, rows=300)
    found = read_cache(path, {})
    assert found is not None
    fields, arrays = found
    for graph in (np.frombuffer(b"IHNf" + bytes(64), np.uint8), arrays["graph"][:100]):
        # checksums are right: only faiss can tell that the graph is not one
        write_cache(path, fields, {**arrays, "graph": graph})
        fresh = HnswIndex(DIM, "cosine")
        assert not fresh.load(path, generation=1, rows=300)
        assert len(fresh) == 0
    store_dir = tmp_path / "store"
    with LocalVectorStore(DIM, path=store_dir, index="hnsw") as store:
        store.upsert([f"v{i}" for i in range(300)], vectors[:300])
    found = read_cache(store_dir / "graph.cache", {})
    assert found is not None
    fields, arrays = found
    write_cache(store_dir / "graph.cache", fields, {**arrays, "graph": arrays["graph"][:100]})
    with LocalVectorStore(DIM, path=store_dir, index="hnsw") as store:
        assert store.search(vectors[7], k=1)[0][0].id == "v7"
