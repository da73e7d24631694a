"""Ingestion as a pipeline: reading, embedding and writing overlap in bounded memory."""

from __future__ import annotations

import threading

import pytest

from ragmem import Document, HashingEmbedder, RAGPipeline
from ragmem.embedders.base import TokenEmbedder
from ragmem.pipeline.overlap import overlapped
from ragmem.retrievers.rerank import LateInteractionReranker


def test_overlapped_yields_in_order_from_other_threads():
    threads = set()

    def square(n):
        threads.add(threading.current_thread().name)
        return n * n

    assert list(overlapped(range(50), square)) == [(n, n * n) for n in range(50)]
    assert threading.current_thread().name not in threads


def test_overlapped_holds_a_bounded_number_of_items_ahead():
    produced = []
    gate = threading.Event()

    def items():
        for n in range(1000):
            produced.append(n)
            yield n

    def slow(n):
        gate.wait()
        return n

    run = overlapped(items(), slow, depth=2)
    consumer = threading.Thread(target=lambda: next(run))
    consumer.start()
    consumer.join(0.5)  # the reading thread runs ahead as far as the queues let it
    assert len(produced) <= 2 * 2 + 3
    gate.set()
    consumer.join()
    run.close()


@pytest.mark.parametrize("where", ["items", "transform"])
def test_an_error_in_either_thread_is_raised_in_the_caller(where):
    def items():
        yield 1
        if where == "items":
            raise OSError("disk gone")
        yield 2

    def transform(n):
        if where == "transform" and n == 2:
            raise OSError("disk gone")
        return n

    with pytest.raises(OSError, match="disk gone"):
        list(overlapped(items(), transform))


def test_stopping_early_stops_both_threads():
    before = threading.active_count()
    run = overlapped(iter(range(10**9)), lambda n: n)
    assert next(run) == (0, 0)
    run.close()
    assert threading.active_count() == before


class CountingChunker:
    """Splits nothing; counts the documents chunked so far."""

    def __init__(self):
        from ragmem.chunking import RecursiveChunker

        self.inner = RecursiveChunker(size=1000, unit="chars")
        self.calls = 0

    def chunk(self, document):
        self.calls += 1
        return self.inner.chunk(document)


class WatchingEmbedder(HashingEmbedder):
    """Records how many documents had been chunked at each embedding call."""

    def __init__(self, chunker):
        super().__init__(dimensions=16)
        self.chunker = chunker
        self.chunked_at_call: list[int] = []

    def _embed_batch(self, texts, purpose):
        if purpose == "document":
            self.chunked_at_call.append(self.chunker.calls)
        return super()._embed_batch(texts, purpose)


def test_embedding_starts_before_every_document_is_chunked():
    # a sequential ingestion chunks all 3,000 documents before embedding the first:
    # memory then holds every chunk; the pipeline holds a few batches
    chunker = CountingChunker()
    embedder = WatchingEmbedder(chunker)
    rag = RAGPipeline(embedder=embedder, chunker=chunker)
    docs = [Document(id=f"d{i}", text=f"passage {i} on topic {i % 7}") for i in range(3000)]
    report = rag.ingest(docs)
    assert report.chunks_added == rag.store.count() == 3000
    assert embedder.chunked_at_call[0] < 3000 // 2
    assert rag.keyword is not None
    assert len(rag.keyword) == 3000


class OnePassEmbedder(HashingEmbedder, TokenEmbedder):
    """A hashing embedder with token vectors, counting its forward passes by kind."""

    def __init__(self):
        super().__init__(dimensions=16)
        self.passes = {"dense": 0, "tokens": 0, "both": 0}

    def _embed_batch(self, texts, purpose):
        self.passes["dense"] += 1
        return super()._embed_batch(texts, purpose)

    def _embed_tokens_batch(self, texts, purpose):
        self.passes["tokens"] += 1
        return [self._token_matrix(t) for t in texts]

    def _token_matrix(self, text):
        return HashingEmbedder._embed_batch(self, text.split(), "document")

    def embed_with_tokens(self, texts, *, purpose="document"):
        self.passes["both"] += 1
        return HashingEmbedder._embed_batch(self, texts, purpose), [
            self._token_matrix(t) for t in texts
        ]


def test_a_late_interaction_pipeline_embeds_each_chunk_once():
    embedder = OnePassEmbedder()
    reranker = LateInteractionReranker(embedder, encoding="float16")
    rag = RAGPipeline(embedder=embedder, reranker=reranker)
    docs = [Document(id=f"d{i}", text=f"note {i} on backups and restores") for i in range(20)]
    rag.ingest(docs)
    assert embedder.passes == {"dense": 0, "tokens": 0, "both": 1}
    assert len(reranker.store) == 20
    hits = rag.search("backups", k=3)
    assert len(hits) == 3
    # the query is embedded; no document is embedded again to rerank
    assert embedder.passes["tokens"] == 1
