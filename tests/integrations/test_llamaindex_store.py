"""RagmemLlamaVectorStore, RagmemLlamaRetriever and RagmemLlamaEmbedding inside LlamaIndex."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from ragmem import LocalVectorStore
from ragmem.embedders import HashingEmbedder
from ragmem.errors import InvalidFilterError, InvalidInputError, MissingDependencyError
from ragmem.integrations.llamaindex import (
    RagmemLlamaEmbedding,
    RagmemLlamaRetriever,
    RagmemLlamaVectorStore,
)
from ragmem.retrievers.bm25 import BM25Retriever
from ragmem.retrievers.dense import DenseRetriever

ROOT = Path(__file__).resolve().parents[2]
DIM = 64

CORPUS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("n1", "doc-a", "red apples grow on apple trees", {"year": 2021, "tags": ["fruit"]}),
    ("n2", "doc-a", "green apples are sour apples", {"year": 2023, "tags": ["fruit", "sour"]}),
    ("n3", "doc-b", "apple pie needs apples and sugar", {"year": 2024, "tags": ["food"]}),
    ("n4", "doc-b", "tax law for apple farmers", {"year": 2022, "tags": ["law"]}),
    ("n5", "doc-c", "oranges and lemons are citrus", {"year": 2023, "tags": ["fruit", "sour"]}),
    ("n6", "doc-c", "the history of apple orchards", {"year": 2020, "tags": ["history"]}),
]


def _nodes() -> list[TextNode]:
    return [
        TextNode(
            id_=node_id,
            text=text,
            metadata=dict(meta),
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc)},
        )
        for node_id, doc, text, meta in CORPUS
    ]


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(dimensions=DIM)


@pytest.fixture
def store() -> LocalVectorStore:
    return LocalVectorStore(dimensions=DIM)


@pytest.fixture
def index(store: LocalVectorStore, embedder: HashingEmbedder) -> VectorStoreIndex:
    vector_store = RagmemLlamaVectorStore(store)
    return VectorStoreIndex(
        _nodes(),
        storage_context=StorageContext.from_defaults(vector_store=vector_store),
        embed_model=RagmemLlamaEmbedding(embedder),
    )


FILTERS = MetadataFilters(
    filters=[
        MetadataFilter(key="tags", operator=FilterOperator.CONTAINS, value="fruit"),
        MetadataFilters(
            filters=[
                MetadataFilter(key="year", operator=FilterOperator.GTE, value=2023),
                MetadataFilter(key="year", operator=FilterOperator.EQ, value=2021),
            ],
            condition=FilterCondition.OR,
        ),
    ]
)
RAGMEM_FILTER = {"tags": {"$contains": "fruit"}, "$or": [{"year": {"$gte": 2023}}, {"year": 2021}]}


def test_index_retrieval_with_filters_equals_ragmem_search(
    index: VectorStoreIndex, store: LocalVectorStore, embedder: HashingEmbedder
) -> None:
    query = "sour apples"
    got = index.as_retriever(similarity_top_k=2, filters=FILTERS).retrieve(query)
    want = store.search(embedder.embed_query(query), k=2, where=RAGMEM_FILTER)[0]
    assert [n.node.node_id for n in got] == [h.id for h in want]
    assert [n.score for n in got] == pytest.approx([h.score for h in want])
    assert [n.node.get_content() for n in got] == [h.text for h in want]
    assert {n.node.node_id for n in got} <= {"n1", "n2", "n5"}
    assert len(got) == 2


def test_nodes_come_back_whole(index: VectorStoreIndex) -> None:
    got = index.as_retriever(similarity_top_k=6).retrieve("apple pie")
    by_id = {n.node.node_id: n.node for n in got}
    assert set(by_id) == {c[0] for c in CORPUS}
    for node_id, doc, text, meta in CORPUS:
        node = by_id[node_id]
        assert node.get_content() == text
        assert node.metadata == meta
        assert node.ref_doc_id == doc


async def test_async_retrieval_equals_sync(index: VectorStoreIndex) -> None:
    retriever = index.as_retriever(similarity_top_k=3, filters=FILTERS)
    sync = retriever.retrieve("green apples")
    asynchronous = await retriever.aretrieve("green apples")
    assert [n.node.node_id for n in asynchronous] == [n.node.node_id for n in sync]


def test_delete_ref_doc_removes_its_nodes(index: VectorStoreIndex, store: LocalVectorStore) -> None:
    index.delete_ref_doc("doc-a")
    assert store.count() == 4
    got = index.as_retriever(similarity_top_k=6).retrieve("apples")
    assert {n.node.node_id for n in got} == {"n3", "n4", "n5", "n6"}


async def test_vector_store_async_methods(
    store: LocalVectorStore, embedder: HashingEmbedder
) -> None:
    vector_store = RagmemLlamaVectorStore(store)
    nodes = _nodes()
    for node, vector in zip(nodes, embedder.embed([n.text for n in nodes])):
        node.embedding = vector.tolist()
    assert await vector_store.async_add(nodes) == [c[0] for c in CORPUS]
    query = VectorStoreQuery(
        query_embedding=embedder.embed_query("citrus").tolist(),
        similarity_top_k=1,
        filters=MetadataFilters(filters=[MetadataFilter(key="year", value=2023)]),
    )
    result = await vector_store.aquery(query)
    assert result.ids == ["n5"]
    await vector_store.adelete("doc-c")
    await vector_store.adelete_nodes(["n1"])
    assert store.count() == 3
    await vector_store.aclear()
    assert store.count() == 0


def test_query_by_doc_ids_get_nodes_delete_nodes_and_clear(
    store: LocalVectorStore, embedder: HashingEmbedder
) -> None:
    vector_store = RagmemLlamaVectorStore(store)
    nodes = _nodes()
    for node, vector in zip(nodes, embedder.embed([n.text for n in nodes])):
        node.embedding = vector.tolist()
    vector_store.add(nodes)
    query = VectorStoreQuery(
        query_embedding=embedder.embed_query("apples").tolist(),
        similarity_top_k=6,
        doc_ids=["doc-b"],
    )
    assert sorted(vector_store.query(query).ids or []) == ["n3", "n4"]
    fetched = vector_store.get_nodes(
        ["n2", "n4"], filters=MetadataFilters(filters=[MetadataFilter(key="year", value=2023)])
    )
    assert [n.node_id for n in fetched] == ["n2"]
    assert fetched[0].get_content() == "green apples are sour apples"
    vector_store.delete_nodes(
        filters=MetadataFilters(
            filters=[MetadataFilter(key="tags", operator=FilterOperator.ANY, value=["law", "food"])]
        )
    )
    assert store.count() == 4
    vector_store.clear()
    assert store.count() == 0


def test_untranslatable_filter_raises_before_searching(
    index: VectorStoreIndex,
) -> None:
    filters = MetadataFilters(
        filters=[MetadataFilter(key="tags", operator=FilterOperator.TEXT_MATCH, value="fru")]
    )
    with pytest.raises(InvalidFilterError, match="text_match"):
        index.as_retriever(filters=filters).retrieve("apples")


def test_bad_metadata_is_rejected_by_ragmem(store: LocalVectorStore) -> None:
    vector_store = RagmemLlamaVectorStore(store)
    bad = TextNode(id_="x", text="t", metadata={"author": None}, embedding=[0.1] * DIM)
    with pytest.raises(InvalidInputError, match="author"):
        vector_store.add([bad])
    reserved = TextNode(id_="y", text="t", metadata={"ref_doc_id": "z"}, embedding=[0.1] * DIM)
    with pytest.raises(InvalidInputError, match="reserved"):
        vector_store.add([reserved])
    with pytest.raises(InvalidInputError, match="embedding"):
        vector_store.add([TextNode(id_="z", text="t")])
    assert store.count() == 0


@pytest.mark.parametrize("kind", ["dense", "bm25"])
def test_retriever_adapter_equals_ragmem_retriever(
    kind: str, store: LocalVectorStore, embedder: HashingEmbedder
) -> None:
    ids = [c[0] for c in CORPUS]
    texts = [c[2] for c in CORPUS]
    metadata = [c[3] for c in CORPUS]
    ragmem_retriever: DenseRetriever | BM25Retriever = (
        DenseRetriever(embedder, store) if kind == "dense" else BM25Retriever()
    )
    ragmem_retriever.add(ids, texts, metadata)
    adapter = RagmemLlamaRetriever(ragmem_retriever, k=3, filters=FILTERS)
    got = adapter.retrieve("sour apples")
    want = ragmem_retriever.retrieve("sour apples", 3, where=RAGMEM_FILTER)
    assert [(n.node.node_id, n.node.get_content(), n.score) for n in got] == [
        (h.id, h.text, h.score) for h in want
    ]
    assert got[0].node.metadata == dict(CORPUS[ids.index(got[0].node.node_id)][3])


async def test_retriever_adapter_async(store: LocalVectorStore, embedder: HashingEmbedder) -> None:
    dense = DenseRetriever(embedder, store)
    dense.add([c[0] for c in CORPUS], [c[2] for c in CORPUS], [c[3] for c in CORPUS])
    adapter = RagmemLlamaRetriever(dense, k=2)
    got = await adapter.aretrieve("citrus lemons")
    assert [n.node.node_id for n in got] == [h.id for h in dense.retrieve("citrus lemons", 2)]
    with pytest.raises(InvalidInputError):
        RagmemLlamaRetriever(dense, k=0)


def test_embedding_adapter_matches_the_ragmem_embedder(embedder: HashingEmbedder) -> None:
    model = RagmemLlamaEmbedding(embedder)
    docs = model.get_text_embedding_batch(["red apples", "tax law"])
    np.testing.assert_allclose(docs, embedder.embed(["red apples", "tax law"]), rtol=1e-6)
    np.testing.assert_allclose(
        model.get_query_embedding("apples"), embedder.embed_query("apples"), rtol=1e-6
    )


def test_missing_llama_index_raises_missing_dependency() -> None:
    code = (
        "import sys; sys.modules['llama_index'] = None\n"
        "try:\n    import ragmem.integrations.llamaindex\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc.extra, exc.package)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [MissingDependencyError.__name__, "llamaindex", "llama-index-core"]


def test_unsupported_query_options_raise(
    store: LocalVectorStore, embedder: HashingEmbedder
) -> None:
    vector_store = RagmemLlamaVectorStore(store)
    vector = embedder.embed_query("apples").tolist()
    with pytest.raises(InvalidInputError, match="node_ids"):
        vector_store.query(VectorStoreQuery(query_embedding=vector, node_ids=["n1"]))
    with pytest.raises(InvalidInputError, match="mmr"):
        vector_store.query(VectorStoreQuery(query_embedding=vector, mode=VectorStoreQueryMode.MMR))
    with pytest.raises(InvalidInputError, match="query_embedding"):
        vector_store.query(VectorStoreQuery(query_str="apples"))
