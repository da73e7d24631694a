"""Mistakes a user can make through the public API end in a RagmemError naming the argument."""

from __future__ import annotations

import pytest

from ragmem import Document, F, HashingEmbedder, RagmemError, RAGPipeline


@pytest.fixture
def rag():
    pipeline = RAGPipeline(embedder=HashingEmbedder(dimensions=16))
    pipeline.ingest([Document(id="a", text="alpha beta")])
    return pipeline


def a_file(tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("x")
    return path


MISTAKES = [
    ("store path is a file", lambda r, t: RAGPipeline(a_file(t), embedder="hashing"), "path"),
    ("Document without id", lambda r, t: Document(text="x"), "id"),
    ("None metadata", lambda r, t: Document(id="a", text="x", metadata=None), "metadata"),
    ("no content", lambda r, t: r.query("q", history=[{"role": "user"}]), "history"),
    ("history as a string", lambda r, t: r.query("q", history="hi"), "history"),
    ("k=0 in search", lambda r, t: r.search("q", k=0), "k"),
    ("k=0 in query", lambda r, t: r.query("q", k=0), "k"),
    ("k=True", lambda r, t: r.search("q", k=True), "k"),
    ("k=0 for the pipeline", lambda r, t: RAGPipeline(embedder="hashing", k=0), "k"),
    ("candidates=0", lambda r, t: RAGPipeline(embedder="hashing", candidates=0), "candidates"),
    ("empty query", lambda r, t: r.search(""), "query"),
    ("min_score not a number", lambda r, t: r.search("q", min_score="high"), "min_score"),
    ("unknown embedder", lambda r, t: RAGPipeline(embedder="nope"), "embedder"),
    ("bad retriever", lambda r, t: RAGPipeline(embedder="hashing", retriever="nope"), "retriever"),
    ("range on a string", lambda r, t: r.search("q", where={"year": {"$gt": "x"}}), "$gt"),
    ("python and on filters", lambda r, t: r.search("q", where=(F("a") > 1) and (F("a") < 3)), "&"),
    ("missing folder", lambda r, t: r.ingest_folder(t / "missing"), "path"),
    ("bad run metadata", lambda r, t: r.ingest(["x"], metadata={"k": None}), "metadata"),
    ("not a document", lambda r, t: r.ingest([5]), "documents"),
    ("delete without selector", lambda r, t: r.delete(), "doc_ids"),
    ("delete with both selectors", lambda r, t: r.delete(["a"], where={"x": 1}), "doc_ids"),
    ("progress not callable", lambda r, t: r.ingest(["x"], progress="yes"), "progress"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "call", "named"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_user_mistake_is_a_ragmem_error_naming_the_argument(rag, tmp_path, what, call, named):
    with pytest.raises((RagmemError, TypeError)) as info:
        call(rag, tmp_path)
    error = info.value
    if isinstance(error, TypeError):
        # Python's and/or on filters: a TypeError by language rule, telling what to use
        assert named == "&", (what, error)
    else:
        assert isinstance(error, RagmemError), (what, type(error))
    assert named in str(error), (what, str(error))
