"""ragmem behind LangChain: filters, embeddings both ways, retrievers as LangChain retrievers."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from ragmem import LocalVectorStore
from ragmem.embedders import HashingEmbedder
from ragmem.errors import InvalidFilterError, InvalidInputError
from ragmem.filters import F
from ragmem.integrations.langchain import (
    LangChainEmbedder,
    RagmemEmbeddings,
    RagmemRetriever,
    RagmemVectorStore,
)
from ragmem.retrievers.base import Reranker
from ragmem.retrievers.bm25 import BM25Retriever
from ragmem.retrievers.dense import DenseRetriever
from ragmem.retrievers.hybrid import HybridRetriever
from ragmem.retrievers.rerank import RerankRetriever
from ragmem.types import Hit


def _store() -> RagmemVectorStore:
    return RagmemVectorStore(RagmemEmbeddings(HashingEmbedder(dimensions=64)))


def test_filters_use_ragmem_dict_form_and_trees():
    store = _store()
    store.add_texts(
        ["red apple", "green apple", "red car"],
        [{"kind": "fruit", "year": 2021}, {"kind": "fruit", "year": 2024}, {"kind": "car"}],
        ids=["a", "b", "c"],
    )
    got = store.similarity_search("red", k=3, filter={"kind": {"$eq": "fruit"}})
    assert sorted(str(d.id) for d in got) == ["a", "b"]
    got = store.similarity_search("apple", k=3, filter={"year": {"$gte": 2022}})
    assert [d.id for d in got] == ["b"]
    got = store.similarity_search("apple", k=3, filter=F("kind").isin(["car"]))
    assert [d.id for d in got] == ["c"]
    with pytest.raises(InvalidFilterError):
        store.similarity_search("apple", filter={"year": {"$near": 1}})
    with pytest.raises(InvalidInputError):
        store.similarity_search("apple", filter=lambda doc: True)  # type: ignore[arg-type]


def test_delete_by_filter_and_scores_are_ragmem_scores():
    store = _store()
    store.add_texts(["one", "two"], [{"n": 1}, {"n": 2}], ids=["1", "2"])
    (doc, score), *_ = store.similarity_search_with_score("one", k=2)
    assert doc.id == "1"
    assert score == pytest.approx(1.0, abs=1e-5)  # cosine of a text with itself
    relevance = store.similarity_search_with_relevance_scores("one", k=1)
    assert relevance[0][1] == pytest.approx(1.0, abs=1e-5)
    store.delete(filter={"n": 1})
    assert [d.id for d in store.get_by_ids(["1", "2"])] == ["2"]
    with pytest.raises(InvalidInputError):
        store.delete()


def test_metadata_is_validated_by_ragmem():
    store = _store()
    with pytest.raises(InvalidInputError, match="None"):
        store.add_texts(["x"], [{"source": None}])
    with pytest.raises(InvalidInputError):
        store.add_texts(["x", "y"], [{}])
    assert store.store.count() == 0


def test_from_texts_and_by_vector():
    embedding = RagmemEmbeddings(HashingEmbedder(dimensions=32))
    store = RagmemVectorStore.from_texts(["alpha beta", "gamma"], embedding, ids=["x", "y"])
    vector = embedding.embed_query("gamma")
    assert [d.id for d in store.similarity_search_by_vector(vector, k=1)] == ["y"]


async def test_async_twins():
    embedding = RagmemEmbeddings(HashingEmbedder(dimensions=32))
    store = await RagmemVectorStore.afrom_texts(["alpha beta", "gamma"], embedding)
    docs = await store.asimilarity_search("gamma", k=1, filter={"$not": {"x": {"$exists": True}}})
    assert docs[0].page_content == "gamma"
    assert await store.aget_by_ids([docs[0].id or "", "missing"]) == docs


def test_embeddings_both_ways_agree():
    embedder = HashingEmbedder(dimensions=48)
    wrapped = RagmemEmbeddings(embedder)
    texts = ["first text", "second text"]
    assert np.allclose(wrapped.embed_documents(texts), embedder.embed(texts))
    assert np.allclose(wrapped.embed_query("q"), embedder.embed_query("q"))

    fake = DeterministicFakeEmbedding(size=12)
    back = LangChainEmbedder(fake)
    assert back.dimensions == 12
    assert np.allclose(back.embed(texts), fake.embed_documents(texts))
    assert np.allclose(back.embed(["q"], purpose="query")[0], fake.embed_query("q"))
    assert LangChainEmbedder(fake, dimensions=12).embed(texts).shape == (2, 12)


async def test_embeddings_async_twins():
    embedder = HashingEmbedder(dimensions=16)
    wrapped = RagmemEmbeddings(embedder)
    assert np.allclose(await wrapped.aembed_documents(["a b"]), embedder.embed(["a b"]))
    assert np.allclose(await wrapped.aembed_query("a"), embedder.embed_query("a"))
    back = LangChainEmbedder(DeterministicFakeEmbedding(size=8))
    assert (await back.embed_async(["x", "y"])).shape == (2, 8)


def test_langchain_embedder_rejects_wrong_widths():
    with pytest.raises(InvalidInputError):
        LangChainEmbedder(DeterministicFakeEmbedding(size=8), dimensions=0)


def _bm25() -> BM25Retriever:
    bm25 = BM25Retriever()
    bm25.add(
        ["c", "d", "e"],
        ["cats purr softly", "dogs bark loudly", "dogs and cats play"],
        metadata=[{"kind": "cat"}, {"kind": "dog"}, {"kind": "both"}],
    )
    return bm25


def test_retriever_over_bm25_matches_ragmem():
    bm25 = _bm25()
    retriever = RagmemRetriever(bm25, k=2)
    docs = retriever.invoke("barking dogs")
    hits = bm25.retrieve("barking dogs", k=2)
    assert docs == [
        Document(
            page_content=h.text or "",
            metadata={**h.metadata, "id": h.id, "score": h.score},
            id=h.id,
        )
        for h in hits
    ]
    assert docs[0].id == "d"


async def test_retriever_filters_and_async():
    retriever = RagmemRetriever(_bm25(), k=5, where={"kind": {"$in": ["cat", "both"]}})
    assert sorted(d.id or "" for d in retriever.invoke("dogs cats")) == ["c", "e"]
    docs = await retriever.ainvoke("dogs", k=1, where={"kind": "dog"})
    assert [d.id for d in docs] == ["d"]


def test_retriever_rejects_bad_arguments():
    with pytest.raises(InvalidInputError):
        RagmemRetriever(_bm25(), k=0)
    with pytest.raises(InvalidFilterError):
        RagmemRetriever(_bm25(), where={"kind": {"$bogus": 1}})


def test_retriever_over_hybrid_matches_ragmem():
    texts = {"c": "cats purr softly", "d": "dogs bark loudly", "e": "dogs and cats play"}
    embedder = HashingEmbedder(dimensions=64)
    dense = DenseRetriever(embedder, LocalVectorStore(64))
    dense.add(list(texts), list(texts.values()))
    bm25 = BM25Retriever()
    bm25.add(list(texts), list(texts.values()))
    hybrid = HybridRetriever([bm25, dense])
    docs = RagmemRetriever(hybrid, k=3).invoke("dogs bark")
    hits = hybrid.retrieve("dogs bark", k=3)
    assert [(d.id, d.metadata["score"]) for d in docs] == [(h.id, h.score) for h in hits]
    assert [d.page_content for d in docs] == [texts[h.id] for h in hits]


def test_mmr_prefers_diverse_documents_and_as_retriever_filters():
    store = _store()
    store.add_texts(
        ["apple pie recipe", "apple pie recipe easy", "car engine repair"],
        [{"kind": "food"}, {"kind": "food"}, {"kind": "car"}],
        ids=["p1", "p2", "car"],
    )
    plain = store.similarity_search("apple pie recipe", k=2)
    assert [d.id for d in plain] == ["p1", "p2"]
    diverse = store.max_marginal_relevance_search("apple pie recipe", k=2, lambda_mult=0.1)
    assert [d.id for d in diverse] == ["p1", "car"]
    retriever = store.as_retriever(search_kwargs={"k": 3, "filter": {"kind": "car"}})
    assert [d.id for d in retriever.invoke("apple")] == ["car"]


async def test_mmr_async_matches_sync():
    store = _store()
    store.add_texts(["a b c", "a b d", "x y z"], ids=["1", "2", "3"])
    sync = store.max_marginal_relevance_search("a b c", k=2, fetch_k=3)
    assert await store.amax_marginal_relevance_search("a b c", k=2, fetch_k=3) == sync


class ShortestFirst(Reranker):
    """Scores a hit by minus its text length: a deterministic order unlike BM25's."""

    def _rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        rescored = [h.model_copy(update={"score": -float(len(h.text or ""))}) for h in hits]
        return sorted(rescored, key=lambda h: -h.score)


async def test_retriever_over_reranked_matches_ragmem():
    reranked = RerankRetriever(_bm25(), ShortestFirst(), depth=10)
    hits = reranked.retrieve("dogs cats", k=3)
    assert [h.id for h in hits] == ["c", "d", "e"]  # reranking changed BM25's order
    retriever = RagmemRetriever(reranked, k=3)
    for docs in (retriever.invoke("dogs cats"), await retriever.ainvoke("dogs cats")):
        assert [(d.id, d.metadata["score"]) for d in docs] == [(h.id, h.score) for h in hits]
