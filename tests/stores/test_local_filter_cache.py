"""Repeated filters reuse their candidate masks, and every write makes them current again."""

from __future__ import annotations

import numpy as np
import pytest

from ragmem import LocalVectorStore
from ragmem.filters import F, parse_filter
from ragmem.stores.local.masks import MaskCache, filter_key

INDEXES = ["flat", "hnsw"]
N = 1200


def _store(index: str) -> tuple[LocalVectorStore, np.ndarray]:
    if index == "hnsw":
        pytest.importorskip("faiss")
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((N, 8)).astype(np.float32)
    # ef_search=1: filtered searches run on the graph with the filter inside it
    store = LocalVectorStore(dimensions=8, index=index, ef_search=1)  # type: ignore[arg-type]
    store.upsert(
        [str(i) for i in range(N)],
        vectors,
        metadata=[{"half": i % 2 == 0, "n": i % 2} for i in range(N)],
    )
    return store, vectors


def _ids(store: LocalVectorStore, query: np.ndarray, where: object) -> list[str]:
    return [h.id for h in store.search(query, k=10, where=where)[0]]  # type: ignore[arg-type]


@pytest.mark.parametrize("index", INDEXES)
def test_writes_between_searches_change_filtered_results(index):
    store, vectors = _store(index)
    query = vectors[1]
    where = {"half": True}
    first = _ids(store, query, where)
    assert len(first) == 10
    assert all(int(i) % 2 == 0 for i in first)
    assert _ids(store, query, where) == first  # served again from the same mask
    # row 1 now matches the filter: the next search must see it
    store.upsert(["1"], vectors[1:2], metadata=[{"half": True, "n": 1}])
    assert _ids(store, query, where)[0] == "1"
    assert store.count(where) == N // 2 + 1
    store.delete(["1"])
    assert "1" not in _ids(store, query, where)
    assert store.count(where) == N // 2
    store.delete(where={"half": True})
    assert _ids(store, query, where) == []
    assert store.count(where) == 0
    store.compact()  # renumbers the rows: cached masks would now point at wrong rows
    after = _ids(store, query, {"half": False})
    assert len(after) == 10
    assert all(int(i) % 2 == 1 and i != "1" for i in after)
    assert store.count({"half": False}) == N // 2 - 1


@pytest.mark.parametrize("index", INDEXES)
def test_bool_and_number_filters_are_cached_apart(index):
    store, vectors = _store(index)
    # ``True == 1`` in Python, but the filter language keeps bool apart from numbers
    assert store.count({"half": True}) == N // 2
    assert store.count({"half": 1}) == 0
    assert store.count({"n": 1}) == N // 2
    assert store.count({"n": True}) == 0
    assert store.count({"n": 1.0}) == N // 2
    assert _ids(store, vectors[0], {"half": 1}) == []


def test_filter_keys():
    def key(where: object) -> object:
        tree = parse_filter(where)  # type: ignore[arg-type]
        assert tree is not None
        return filter_key(tree)

    assert key({"a": 1}) == key({"a": 1})
    assert key({"a": 1}) != key({"a": True})
    assert key({"a": {"$in": [1, 2]}}) != key({"a": {"$in": [True, 2]}})
    assert key({"a": {"$in": [1, 2]}}) == key(F("a").isin([1, 2]))
    assert key({"$not": {"a": 1}}) != key({"a": 1})
    assert key({"$or": [{"a": 1}, {"b": 2}]}) != key({"$and": [{"a": 1}, {"b": 2}]})
    assert hash(key({"$or": [{"a": "x"}, {"b": {"$gte": 2.5}}]}))


def test_mask_cache_keeps_read_only_masks_and_bounds_its_size():
    cache = MaskCache(size=2)
    calls: list[int] = []

    def compute(value: int) -> np.ndarray:
        calls.append(value)
        return np.array([True, False])

    filters = [parse_filter({"a": i}) for i in range(3)]
    first = cache.get(filters[0], lambda: compute(0))  # type: ignore[arg-type]
    assert cache.get(filters[0], lambda: compute(0)) is first  # type: ignore[arg-type]
    assert not first.flags.writeable
    cache.get(filters[1], lambda: compute(1))  # type: ignore[arg-type]
    cache.get(filters[2], lambda: compute(2))  # type: ignore[arg-type]
    cache.get(filters[0], lambda: compute(0))  # type: ignore[arg-type]
    assert calls == [0, 1, 2, 0]
    cache.clear()
    cache.get(filters[0], lambda: compute(0))  # type: ignore[arg-type]
    assert calls == [0, 1, 2, 0, 0]
