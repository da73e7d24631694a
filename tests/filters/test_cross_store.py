"""$prefix, substring $contains and big integers give the reference results on every backend
that evaluates them, and are refused by name where a backend cannot."""

import random

import pytest

from ragmem import BM25Retriever, InvalidFilterError, LocalVectorStore
from ragmem.filters import matches, parse_filter
from ragmem.types import Metadata
from tests.stores.adapter_equivalence import dataset, random_filter


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_string_operators_agree_on_the_store_and_bm25(seed):
    ids, vectors, metas = dataset(seed, strings=True)
    store = LocalVectorStore(dimensions=vectors.shape[1])
    store.upsert(ids, vectors, metadata=metas)
    bm25 = BM25Retriever()
    bm25.add(ids, ["common words here"] * len(ids), metadata=metas)
    rng = random.Random(seed + 10)
    for _ in range(200):
        where = random_filter(rng, strings=True)
        expected = {i for i, m in zip(ids, metas) if matches(where, m)}
        assert store.count(where) == len(expected), where
        assert bm25.count(where) == len(expected), where
        got = {h.id for h in bm25.retrieve("common", k=len(ids), where=where)}
        assert got == expected, where


def test_big_integers_compare_exactly_on_the_store_and_bm25():
    big = 1_700_000_000_000_000_000
    metas: list[Metadata] = [{"ts": big}, {"ts": big + 1}, {"ts": [big - 1, 3]}]
    ids = ["a", "b", "c"]
    store = LocalVectorStore(dimensions=2)
    store.upsert(ids, [[1.0, 0.0]] * 3, metadata=metas)
    bm25 = BM25Retriever()
    bm25.add(ids, ["word"] * 3, metadata=metas)
    for where, want in (
        ({"ts": big}, {"a"}),
        ({"ts": big + 1}, {"b"}),
        ({"ts": {"$gt": big}}, {"b"}),
        ({"ts": {"$lt": big}}, {"c"}),
        ({"ts": {"$in": [big - 1, big + 1]}}, {"b", "c"}),
    ):
        assert {h.id for h in store.search([1.0, 0.0], k=3, where=where)[0]} == want, where
        assert {h.id for h in bm25.retrieve("word", k=3, where=where)} == want, where


def test_qdrant_and_chroma_refuse_prefix_by_name():
    pytest.importorskip("qdrant_client")
    from ragmem.stores._translate_chroma import to_chroma
    from ragmem.stores._translate_qdrant import to_qdrant

    tree = parse_filter({"path": {"$prefix": "guides/"}})
    assert tree is not None
    for translate in (to_qdrant, to_chroma):
        with pytest.raises(InvalidFilterError, match=r"\$prefix.*path|path.*\$prefix"):
            translate(tree)
