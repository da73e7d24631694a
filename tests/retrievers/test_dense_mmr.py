import numpy as np
import pytest

from ragmem import ConfigurationError, HashingEmbedder, Hit, InvalidInputError, LocalVectorStore
from ragmem.retrievers import BM25Retriever, DenseRetriever, MMRRetriever, Retriever, mmr


def dense():
    retriever = DenseRetriever(HashingEmbedder(64), LocalVectorStore(dimensions=64))
    retriever.add(
        ["a", "b", "c"],
        ["red apples and pears", "green apples", "tax law reform"],
        metadata=[{"k": 1}, {"k": 2}, {"k": 3}],
    )
    return retriever


def test_dense_retrieves_with_filters_and_explain():
    retriever = dense()
    top = retriever.retrieve("apples", k=2)
    assert {h.id for h in top} == {"a", "b"}
    assert top[0].explain["dense"] == top[0].score
    assert [h.id for h in retriever.retrieve("apples", k=3, where={"k": 3})] == ["c"]
    assert retriever.delete(["c"]) == 1
    assert len(retriever.retrieve("tax", k=5)) == 2


async def test_dense_async_matches_sync():
    retriever = dense()
    assert await retriever.retrieve_async("apples", k=3) == retriever.retrieve("apples", k=3)


def test_mmr_function():
    docs = np.array([[1, 0], [0.99, 0.1], [0, 1]], np.float32)
    query = np.array([0.99, 0.1], np.float32)
    assert mmr(query, docs, 3, lambda_mult=1.0) == [1, 0, 2]  # pure relevance
    assert mmr(query, docs, 2, lambda_mult=0.3) == [1, 2]  # the near-duplicate is skipped
    assert mmr(query, docs[:0], 3) == []
    with pytest.raises(ConfigurationError):
        mmr(query, docs, 1, lambda_mult=2)


class Fixed(Retriever):
    def __init__(self, hits):
        self.hits = hits

    def _retrieve(self, query, k, where):
        return self.hits[:k]


def test_mmr_retriever_diversifies():
    base = BM25Retriever()
    base.add(
        ["a", "b", "c"],
        ["solar power plant design", "solar power plant designs", "wind power farm"],
    )
    embedder = HashingEmbedder(128)
    plain = MMRRetriever(base, embedder, lambda_mult=1.0)
    diverse = MMRRetriever(base, embedder, lambda_mult=0.3)
    assert [h.id for h in plain.retrieve("solar power plant", k=2)] == ["a", "b"]
    picked = diverse.retrieve("solar power plant", k=2)
    assert [h.id for h in picked] == ["a", "c"]
    assert picked[1].explain["mmr"] == {"rank": 2, "base_rank": 3}


async def test_mmr_async_and_errors():
    base = BM25Retriever()
    base.add(["a", "b"], ["x y", "x z"])
    retriever = MMRRetriever(base, HashingEmbedder(32))
    assert await retriever.retrieve_async("x", k=2) == retriever.retrieve("x", k=2)
    textless = MMRRetriever(Fixed([Hit(id="a", score=1.0)]), HashingEmbedder(32))
    with pytest.raises(InvalidInputError, match="text"):
        textless.retrieve("x")
    with pytest.raises(ConfigurationError):
        MMRRetriever(base, HashingEmbedder(32), fetch_k=0)
