"""VectorStoreContract: the behaviour every VectorStore must show (built-in and plugins).

Subclass it in a test module and provide a ``store`` fixture that returns a new, empty
store of 8 dimensions with the cosine metric::

    class TestMyStore(VectorStoreContract):
        @pytest.fixture
        def store(self):
            return MyStore(collection="t", dimensions=8)
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from ragmem.errors import (
    DimensionMismatchError,
    InvalidFilterError,
    InvalidInputError,
    InvalidVectorError,
    NotFoundError,
)
from ragmem.filters import F, matches

if TYPE_CHECKING:
    from ragmem.stores.base import VectorStore
    from ragmem.types import Metadata

__all__ = ["FILTER_CASES", "VectorStoreContract", "filter_dataset", "unit_vectors"]

DIM = 8


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """``n`` random unit vectors (float32), reproducible by seed."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    unit: np.ndarray = x / np.linalg.norm(x, axis=1, keepdims=True)
    return unit


def filter_dataset() -> tuple[list[str], list[Metadata]]:
    """Forty items whose metadata exercises every filter operator and edge case."""
    colours = ["red", "green", "blue"]
    ids, metas = [], []
    for i in range(40):
        meta: Metadata = {"n": i, "colour": colours[i % 3]}
        if i % 2 == 0:
            meta["score"] = i / 4  # floats, some integral
        if i % 5 != 0:
            meta["tags"] = [f"t{i % 4}", f"u{i % 3}"]
        if i % 7 == 0:
            meta["flag"] = i % 2 == 0
        if i % 11 == 0:
            meta["mixed"] = "1" if i % 2 else 1
        ids.append(f"item-{i:02d}")
        metas.append(meta)
    return ids, metas


FILTER_CASES: list[Any] = [
    {"colour": "red"},
    {"colour": {"$eq": "red"}},
    {"colour": {"$ne": "red"}},
    {"n": {"$lt": 10}},
    {"n": {"$lte": 10}},
    {"n": {"$gt": 30}},
    {"n": {"$gte": 30}},
    {"n": {"$gte": 10, "$lt": 20}},
    {"score": {"$gte": 2.5}},
    {"score": 3},
    {"n": 4.0},
    {"colour": {"$in": ["red", "blue"]}},
    {"colour": {"$nin": ["red", "blue"]}},
    {"n": {"$in": [1, 2, 3, 39, 100]}},
    {"tags": {"$contains": "t1"}},
    {"tags": "u2"},
    {"tags": {"$in": ["t0", "u1"]}},
    {"tags": {"$nin": ["t0"]}},
    {"tags": {"$ne": "t2"}},
    {"tags": {"$exists": True}},
    {"tags": {"$exists": False}},
    {"flag": True},
    {"flag": False},
    {"flag": {"$ne": True}},
    {"mixed": 1},
    {"mixed": "1"},
    {"missing_key": "x"},
    {"missing_key": {"$ne": "x"}},
    {"$and": [{"colour": "red"}, {"n": {"$gt": 10}}]},
    {"$or": [{"colour": "red"}, {"tags": {"$contains": "t3"}}]},
    {"$not": {"colour": "red"}},
    {"$not": {"$or": [{"n": {"$lt": 5}}, {"flag": {"$exists": True}}]}},
    {"$and": [{"$or": [{"colour": "green"}, {"n": 0}]}, {"$not": {"tags": "t1"}}]},
    {"$and": []},
    {"$or": []},
    (F("n") >= 20) & ~F("colour").isin(["green"]),
    F("tags").contains("u0") | (F("score") < 1),
]


class VectorStoreContract:
    """Shared tests for VectorStore implementations."""

    @pytest.fixture
    def store(self) -> VectorStore:
        raise NotImplementedError("subclasses provide a `store` fixture")

    # -- basics -------------------------------------------------------------------------------

    def test_empty_store(self, store: VectorStore) -> None:
        assert store.count() == 0
        assert store.search(unit_vectors(1)[0], k=5) == [[]]
        assert store.search(unit_vectors(3), k=5) == [[], [], []]

    def test_upsert_get_round_trip(self, store: VectorStore) -> None:
        vectors = unit_vectors(3)
        metas: list[Metadata] = [
            {"a": 1, "b": "x"},
            {"tags": ["p", "q"], "f": 0.5, "ok": True},
            {},
        ]
        store.upsert(["a", "b", "c"], vectors, texts=["alpha", "beta", None], metadata=metas)
        assert store.count() == 3
        records = store.get(["c", "a", "b"])
        assert [r.id for r in records] == ["c", "a", "b"]
        assert [r.text for r in records] == [None, "alpha", "beta"]
        assert [r.metadata for r in records] == [metas[2], metas[0], metas[1]]
        for record, vector in zip(records, vectors[[2, 0, 1]]):
            np.testing.assert_allclose(record.vector, vector, atol=1e-5)

    def test_upsert_replaces_whole_item(self, store: VectorStore) -> None:
        vectors = unit_vectors(2)
        store.upsert(["a"], vectors[:1], texts=["old"], metadata=[{"v": 1, "old": True}])
        store.upsert(["a"], vectors[1:], texts=["new"], metadata=[{"v": 2}])
        assert store.count() == 1
        (record,) = store.get(["a"])
        assert record.text == "new"
        assert record.metadata == {"v": 2}
        np.testing.assert_allclose(record.vector, vectors[1], atol=1e-5)
        assert store.count({"old": True}) == 0
        assert store.search(vectors[1], k=1)[0][0].id == "a"

    def test_delete_by_ids(self, store: VectorStore) -> None:
        store.upsert(["a", "b", "c"], unit_vectors(3))
        assert store.delete(["a", "zzz"]) == 1
        assert store.count() == 2
        with pytest.raises(NotFoundError) as info:
            store.get(["a", "b"])
        assert info.value.ids == ["a"]
        assert {h.id for h in store.search(unit_vectors(1)[0], k=10)[0]} == {"b", "c"}
        assert store.delete(["a"]) == 0

    def test_delete_by_filter(self, store: VectorStore) -> None:
        ids, metas = filter_dataset()
        store.upsert(ids, unit_vectors(len(ids)), metadata=metas)
        expected = sum(matches({"colour": "red"}, m) for m in metas)
        assert store.delete(where={"colour": "red"}) == expected
        assert store.count() == len(ids) - expected
        assert store.count({"colour": "red"}) == 0

    def test_delete_needs_exactly_one_selector(self, store: VectorStore) -> None:
        with pytest.raises(InvalidInputError):
            store.delete()
        with pytest.raises(InvalidInputError):
            store.delete(["a"], where={"x": 1})

    def test_reinsert_after_delete(self, store: VectorStore) -> None:
        vectors = unit_vectors(2)
        store.upsert(["a"], vectors[:1], texts=["one"])
        store.delete(["a"])
        store.upsert(["a"], vectors[1:], texts=["two"])
        assert store.get(["a"])[0].text == "two"
        assert store.count() == 1

    # -- search -------------------------------------------------------------------------------

    def test_search_matches_brute_force(self, store: VectorStore) -> None:
        vectors = unit_vectors(200, seed=1)
        ids = [f"v{i}" for i in range(200)]
        store.upsert(ids, vectors, texts=[f"text {i}" for i in range(200)])
        queries = unit_vectors(5, seed=2)
        results = store.search(queries, k=10)
        for query, hits in zip(queries, results):
            expected = np.argsort(-(vectors @ query), kind="stable")[:10]
            assert [h.id for h in hits] == [ids[i] for i in expected]
            np.testing.assert_allclose(
                [h.score for h in hits], (vectors @ query)[expected], atol=1e-4
            )
            assert hits[0].text == f"text {expected[0]}"

    def test_scores_are_higher_is_better(self, store: VectorStore) -> None:
        vectors = unit_vectors(50)
        store.upsert([str(i) for i in range(50)], vectors)
        hits = store.search(vectors[7], k=50)[0]
        assert hits[0].id == "7"
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)

    def test_batched_search_equals_single(self, store: VectorStore) -> None:
        store.upsert([str(i) for i in range(100)], unit_vectors(100))
        queries = unit_vectors(4, seed=9)
        batched = store.search(queries, k=7)
        singles = [store.search(q, k=7)[0] for q in queries]
        assert [[h.id for h in r] for r in batched] == [[h.id for h in r] for r in singles]

    def test_k_larger_than_store(self, store: VectorStore) -> None:
        store.upsert(["a", "b", "c"], unit_vectors(3))
        assert len(store.search(unit_vectors(1)[0], k=100)[0]) == 3

    def test_invalid_k(self, store: VectorStore) -> None:
        with pytest.raises(InvalidInputError):
            store.search(unit_vectors(1)[0], k=0)

    # -- filters ------------------------------------------------------------------------------

    @pytest.mark.parametrize("where", FILTER_CASES, ids=[str(i) for i in range(len(FILTER_CASES))])
    def test_filter_semantics(self, store: VectorStore, where: Any) -> None:
        ids, metas = filter_dataset()
        store.upsert(ids, unit_vectors(len(ids)), metadata=metas)
        expected = {i for i, m in zip(ids, metas) if matches(where, m)}
        found = {h.id for h in store.search(unit_vectors(1, seed=5)[0], k=100, where=where)[0]}
        assert found == expected
        assert store.count(where) == len(expected)

    def test_filter_applies_before_top_k(self, store: VectorStore) -> None:
        n = 1000
        metas: list[Metadata] = [{"rare": True} if i % 200 == 0 else {} for i in range(n)]
        store.upsert([str(i) for i in range(n)], unit_vectors(n), metadata=metas)
        hits = store.search(unit_vectors(1, seed=3)[0], k=3, where={"rare": True})[0]
        assert len(hits) == 3
        assert all(h.metadata == {"rare": True} for h in hits)
        assert len(store.search(unit_vectors(1, seed=3)[0], k=10, where={"rare": True})[0]) == 5

    def test_invalid_filter_is_rejected(self, store: VectorStore) -> None:
        store.upsert(["a"], unit_vectors(1))
        with pytest.raises(InvalidFilterError, match=r"\$regex"):
            store.search(unit_vectors(1)[0], k=1, where={"a": {"$regex": "x"}})
        with pytest.raises(InvalidFilterError):
            store.count({"a": {"$gt": "text"}})

    # -- bad input ----------------------------------------------------------------------------

    def test_dimension_mismatch(self, store: VectorStore) -> None:
        with pytest.raises(DimensionMismatchError):
            store.upsert(["a"], np.ones((1, DIM + 1), np.float32))
        store.upsert(["a"], unit_vectors(1))
        with pytest.raises(DimensionMismatchError):
            store.search(np.ones(DIM - 1, np.float32), k=1)
        assert store.count() == 1

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_non_finite_vectors_rejected(self, store: VectorStore, bad: float) -> None:
        vectors = unit_vectors(2)
        vectors[1, 3] = bad
        with pytest.raises(InvalidVectorError):
            store.upsert(["a", "b"], vectors)
        assert store.count() == 0
        with pytest.raises(InvalidVectorError):
            store.search(vectors[1], k=1)

    def test_bad_ids_and_lengths(self, store: VectorStore) -> None:
        with pytest.raises(InvalidInputError):
            store.upsert(["a", "a"], unit_vectors(2))
        with pytest.raises(InvalidInputError):
            store.upsert([""], unit_vectors(1))
        with pytest.raises(InvalidVectorError):
            store.upsert(["a", "b"], unit_vectors(3))
        with pytest.raises(InvalidInputError):
            store.upsert(["a"], unit_vectors(1), texts=["x", "y"])
        with pytest.raises(InvalidInputError):
            store.upsert(["a"], unit_vectors(1), metadata=[{"x": None}])  # type: ignore[dict-item]
        with pytest.raises(InvalidInputError):
            store.upsert(["a"], unit_vectors(1), metadata=[{"x": {"nested": 1}}])  # type: ignore[dict-item]
        assert store.count() == 0

    def test_unicode_ids_texts_and_metadata(self, store: VectorStore) -> None:
        ids = ["é/ü?#&=", "日本語", "emoji 🧪 id", "spaces and\ttabs"]
        metas: list[Metadata] = [{"städt": "Zürich"}, {"lang": "日本"}, {"e": "🧪"}, {"k": "a b"}]
        store.upsert(ids, unit_vectors(4), texts=["ü", "語", "🧪", "\n"], metadata=metas)
        assert [r.metadata for r in store.get(ids)] == metas
        assert store.count({"lang": "日本"}) == 1
        assert store.search(unit_vectors(4)[1], k=1)[0][0].id == "日本語"

    def test_large_batch(self, store: VectorStore) -> None:
        n = 10_000
        vectors = unit_vectors(n, seed=4)
        ids = [f"doc-{i}" for i in range(n)]
        store.upsert(ids, vectors, metadata=[{"bucket": i % 10} for i in range(n)])
        assert store.count() == n
        assert store.count({"bucket": 3}) == n // 10
        hits = store.search(vectors[1234], k=1)[0]
        assert hits[0].id == "doc-1234"

    # -- async --------------------------------------------------------------------------------

    def test_async_twins(self, store: VectorStore) -> None:
        async def scenario() -> None:
            vectors = unit_vectors(20)
            await store.upsert_async(
                [str(i) for i in range(20)], vectors, metadata=[{"i": i} for i in range(20)]
            )
            assert await store.count_async() == 20
            assert await store.count_async({"i": {"$lt": 5}}) == 5
            hits = await store.search_async(vectors[3], k=3, where={"i": {"$gte": 3}})
            assert hits[0][0].id == "3"
            assert (await store.get_async(["4"]))[0].metadata == {"i": 4}
            assert await store.delete_async(["4", "5"]) == 2
            assert await store.count_async() == 18

        asyncio.run(scenario())
