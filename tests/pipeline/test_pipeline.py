"""RAGPipeline: ingestion, retrieval, context, answers with citations, streaming, swapping parts."""

from __future__ import annotations

import pytest

from ragmem import (
    ConfigurationError,
    ContextBuilder,
    Document,
    HashingEmbedder,
    InvalidInputError,
    LocalVectorStore,
    RAGPipeline,
)
from ragmem.retrievers import Reranker
from ragmem.tokens import WhitespaceTokenizer
from tests.pipeline_helpers import CitingLLM, CountingEmbedder, all_ids

DOCS = [
    Document(id="offline", text="ragmem runs fully offline with a bundled local model."),
    Document(id="stores", text="Qdrant and Chroma stores pass the same contract suite."),
    Document(id="bm25", text="BM25 keyword search updates incrementally without rebuilds."),
]


def make(**kw) -> RAGPipeline:
    kw.setdefault("embedder", HashingEmbedder(dimensions=64))
    return RAGPipeline(**kw)


def test_query_without_an_llm_returns_context_and_sources():
    rag = make(k=2)
    report = rag.ingest(DOCS)
    assert (len(report.added), report.chunks_added, report.embedded) == (3, 3, 3)
    answer = rag.query("does ragmem run offline?")
    assert answer.text is None
    assert answer.citations == []
    assert len(answer.hits) == 2
    assert answer.sources[0].doc_id == "offline"
    assert answer.sources[0].chunk_ids == [answer.hits[0].id]
    assert "[1] offline" in answer.context.text
    assert DOCS[0].text in answer.context.text


def test_hits_carry_document_offsets_and_metadata():
    rag = make()
    rag.ingest([Document(id="d", text="Alpha. " * 400, metadata={"lang": "en"})])
    hits = rag.search("alpha", k=50)
    assert len(hits) > 1
    for hit in hits:
        meta = hit.metadata
        assert meta["doc_id"] == "d"
        assert meta["lang"] == "en"
        assert hit.text == ("Alpha. " * 400)[meta["start"] : meta["end"]]
    context = rag.build_context("alpha", hits)
    # consecutive chunks of one document merge back into one source
    assert len(context.sources) < len(hits)


def test_answer_cites_sources_that_exist():
    llm = CitingLLM()
    rag = make(llm=llm, k=3)
    rag.ingest(DOCS)
    answer = rag.query("offline?")
    assert answer.text == "It runs offline [1]. See also [2] and [99]."
    assert [s.number for s in answer.citations] == [1, 2]  # [99] matches no source
    system, user = llm.seen[0]
    assert system.role == "system"
    assert "[1]" in system.content
    assert user.content.startswith("Sources:\n\n[1] ")
    assert user.content.endswith("Question: offline?")


def test_streaming_yields_pieces_then_the_full_answer():
    rag = make(llm=CitingLLM())
    rag.ingest(DOCS)
    stream = rag.stream("offline?")
    assert stream.sources  # known before the first piece
    pieces = list(stream)
    assert len(pieces) > 1
    assert stream.answer.text == "".join(pieces)
    assert [s.number for s in stream.answer.citations] == [1, 2]


def test_stream_without_llm_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="LLM"):
        make().stream("anything")


async def test_query_async_matches_query():
    rag = make(llm=CitingLLM())
    rag.ingest(DOCS)
    sync, concurrent = rag.query("stores?"), await rag.query_async("stores?")
    assert concurrent.model_dump(exclude={"timings"}) == sync.model_dump(exclude={"timings"})
    assert set(concurrent.timings) == set(sync.timings) == {"retrieve", "assemble", "generate"}


def test_where_filter_restricts_retrieval():
    rag = make()
    rag.ingest([Document(id=d.id, text=d.text, metadata={"topic": d.id}) for d in DOCS])
    hits = rag.search("ragmem offline", where={"topic": "bm25"})
    assert {h.metadata["doc_id"] for h in hits} == {"bm25"}


class Reverse(Reranker):
    def _rerank(self, query, hits):
        return [h.model_copy(update={"score": float(i)}) for i, h in enumerate(hits)]


def test_reranker_and_context_builder_are_swappable():
    builder = ContextBuilder(200, tokenizer=WhitespaceTokenizer(), template="xml")
    rag = make(reranker=Reverse(), context=builder, k=2, candidates=3)
    rag.ingest(DOCS)
    plain = make(k=3)
    plain.ingest(DOCS)
    assert [h.id for h in rag.search("offline")] == [h.id for h in plain.search("offline")][:2]
    assert rag.query("offline").context.text.startswith("<sources>")


def test_a_reranker_sees_the_cross_validated_depth_unless_told_otherwise():
    assert make(reranker=Reverse(), k=2).candidates == 50
    assert make(reranker=Reverse(), k=2, candidates=7).candidates == 7
    assert make(k=4).candidates == 4


def test_embedder_by_registry_name_and_unknown_names():
    rag = RAGPipeline(embedder="hashing", embedder_options={"dimensions": 32})
    assert rag.embedder.dimensions == 32
    with pytest.raises(LookupError, match="nope"):
        RAGPipeline(embedder="nope")
    with pytest.raises(ConfigurationError, match="retriever"):
        make(retriever="nope")


def test_reingesting_unchanged_documents_embeds_nothing_and_changes_replace():
    embedder = CountingEmbedder()
    rag = make(embedder=embedder)
    rag.ingest(DOCS)
    before = all_ids(rag.store)
    embedder.embedded.clear()
    report = rag.ingest(DOCS)
    assert (embedder.embedded, report.unchanged) == ([], ["offline", "stores", "bm25"])
    changed = Document(id="bm25", text="BM25 is now a different text entirely.")
    report = rag.ingest([DOCS[0], DOCS[1], changed])
    assert embedder.embedded == [changed.text]
    assert report.updated == ["bm25"]
    after = all_ids(rag.store)
    assert len(after) == 3
    assert {i for i in before if not i.startswith("bm25")} <= after
    assert not any(i.startswith("bm25") for i in before & after)


def test_plain_strings_and_bad_documents():
    rag = make()
    assert rag.ingest(["just a string"]).chunks_added == 1
    with pytest.raises(InvalidInputError, match="twice"):
        rag.ingest([DOCS[0], DOCS[0]])
    with pytest.raises(InvalidInputError):
        rag.ingest([42])  # type: ignore[list-item]


def test_persistent_config_refuses_a_different_embedder(tmp_path):
    RAGPipeline(
        tmp_path,
        embedder="hashing",
        embedder_options={"dimensions": 32},
        store=LocalVectorStore(32),
    ).ingest(DOCS)
    # reopening without naming an embedder uses the recorded one
    assert RAGPipeline(tmp_path, store=LocalVectorStore(32)).embedder.dimensions == 32
    with pytest.raises(ConfigurationError, match="built with embedder"):
        RAGPipeline(tmp_path, embedder=HashingEmbedder(dimensions=64), store=LocalVectorStore(64))


def test_store_and_embedder_dimensions_must_agree():
    with pytest.raises(ConfigurationError, match="dimensional"):
        RAGPipeline(embedder=HashingEmbedder(dimensions=8), store=LocalVectorStore(16))


def test_hybrid_defaults_match_the_evaluated_ones():
    from ragmem.eval.configs import HYBRID_DEFAULTS
    from ragmem.pipeline.defaults import HYBRID

    assert HYBRID == HYBRID_DEFAULTS


@pytest.mark.parametrize("name", ["hybrid", "rrf", "dense", "bm25"])
def test_every_named_retriever_finds_the_obvious_document(name):
    rag = make(retriever=name)
    rag.ingest(DOCS)
    assert rag.search("incremental BM25 keyword search", k=1)[0].metadata["doc_id"] == "bm25"


def test_keyword_retrievers_need_the_keyword_index():
    with pytest.raises(ConfigurationError, match="keyword"):
        make(retriever="hybrid", keyword=False)
    rag = make(retriever="dense", keyword=False)
    rag.ingest(DOCS)
    assert rag.keyword is None


def test_the_keyword_index_persists_and_is_rebuilt_when_missing(tmp_path):
    opts = {"embedder": "hashing", "embedder_options": {"dimensions": 32}}
    with RAGPipeline(tmp_path, **opts) as rag:
        rag.ingest(DOCS)
        rag.ingest([DOCS[0], DOCS[1]])  # nothing removed: documents are not a folder
    with RAGPipeline(tmp_path, retriever="bm25", read_only=True) as rag:
        assert rag.search("contract suite", k=1)[0].metadata["doc_id"] == "stores"
    (tmp_path / "keyword.bm25").unlink()
    with RAGPipeline(tmp_path, retriever="bm25") as rag:  # rebuilt from the store
        assert len(rag.keyword) == 3
        assert rag.search("contract suite", k=1)[0].metadata["doc_id"] == "stores"
    assert (tmp_path / "keyword.bm25").exists()


def test_read_only_pipelines_cannot_ingest(tmp_path):
    with pytest.raises(ConfigurationError, match="existing index"):
        RAGPipeline(tmp_path / "none", read_only=True)
    with RAGPipeline(tmp_path, embedder="hashing") as rag:
        rag.ingest(DOCS)
    with RAGPipeline(tmp_path, read_only=True) as rag, pytest.raises(ConfigurationError):
        rag.ingest(DOCS)


def test_rerankers_by_name():
    from ragmem.eval.configs import RERANK_DEFAULTS
    from ragmem.pipeline.defaults import RERANK

    assert RERANK == RERANK_DEFAULTS
    with pytest.raises(ConfigurationError, match="token vectors"):
        make(reranker="late-interaction")  # HashingEmbedder has no token vectors
    with pytest.raises(ConfigurationError, match="unknown reranker"):
        make(reranker="nope")


def test_default_chunks_fit_the_local_models_window():
    pytest.importorskip("onnxruntime", reason="needs ragmem[local]")
    from ragmem.tokens import local_tokenizer

    rag = RAGPipeline()
    long = " ".join(f"Sentence {i} talks about retrieval and memory." for i in range(400))
    rag.ingest([Document(id="long", text=long)])
    hits = rag.search("retrieval", k=100)
    assert len(hits) > 5
    assert rag.embedder.truncated_count == 0  # nothing was cut to fit the window
    assert all(local_tokenizer().count(h.text) <= 254 for h in hits)
    for hit in hits:
        assert long[hit.metadata["start"] : hit.metadata["end"]] == hit.text


def test_a_first_run_that_stores_nothing_pins_nothing(tmp_path):
    class Failing(HashingEmbedder):
        def _embed_batch(self, texts, purpose):
            raise RuntimeError("the server is down")

    with RAGPipeline(tmp_path, embedder=Failing(dimensions=32)) as rag, pytest.raises(RuntimeError):
        rag.ingest(DOCS)
    assert not (tmp_path / "ragmem.json").exists()
    # another embedder of the same width may take the folder over
    with RAGPipeline(tmp_path, embedder=HashingEmbedder(dimensions=32, seed=1)) as rag:
        rag.ingest(DOCS)
    with RAGPipeline(tmp_path, read_only=True) as rag:
        assert rag.embedder.name == "hashing-32-1"
    # a different width is named, with what to delete
    other = tmp_path / "other"
    with RAGPipeline(other, embedder=Failing(dimensions=32)) as rag, pytest.raises(RuntimeError):
        rag.ingest(DOCS)
    with pytest.raises(ConfigurationError, match="delete that folder"):
        RAGPipeline(other, embedder=HashingEmbedder(dimensions=16))
