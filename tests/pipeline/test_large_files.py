"""Large files stream through ingestion in bounded memory, and are written crash-safely."""

from __future__ import annotations

import io
import os
import random
import tracemalloc

import numpy as np
import pytest

import ragmem.ingest
from ragmem import Document, HashingEmbedder, RAGPipeline
from ragmem.chunking import RecursiveChunker
from ragmem.embedders.base import Embedder
from ragmem.ingest import (
    IngestReport,
    Manifest,
    UnreadableFileError,
    _parts,
    _stream_parts,
    iter_documents,
    load_file,
)
from ragmem.pipeline import writer as writer_module
from ragmem.pipeline.writer import PendingSource
from tests.crash import run_killed
from tests.pipeline_helpers import all_ids


def test_streamed_parts_are_the_parts_of_the_whole_text():
    rng = random.Random(7)
    for _ in range(200):
        size = rng.randint(2, 40)
        text = "".join(rng.choice("ab\n é") for _ in range(rng.randint(0, 300)))
        assert list(_stream_parts(io.StringIO(text), size)) == _parts(text, size)


def test_a_large_file_streams_the_documents_load_file_makes(tmp_path, monkeypatch):
    monkeypatch.setattr(ragmem.ingest, "PART_CHARS", 1000)
    text = "".join(f"línea {i}: the quick brown fox\r\n" for i in range(300))
    path = tmp_path / "big.md"
    path.write_bytes(text.encode())
    streamed = list(iter_documents(path, doc_id="big.md"))
    assert len(streamed) > 5
    assert streamed == load_file(path, doc_id="big.md")
    # more bytes than PART_CHARS but fewer characters: one document, as load_file makes
    path.write_text("é" * 900, encoding="utf-8")
    assert list(iter_documents(path, doc_id="e")) == load_file(path, doc_id="e")


def test_an_undecodable_large_file_fails_before_its_first_part(tmp_path, monkeypatch):
    monkeypatch.setattr(ragmem.ingest, "PART_CHARS", 100)
    path = tmp_path / "big.txt"
    path.write_bytes(b"fine line\n" * 200 + b"caf\xe9\n")
    documents = iter_documents(path, doc_id="big.txt")
    with pytest.raises(UnreadableFileError, match="not UTF-8"):
        next(documents)


class FastEmbedder(Embedder):
    """Cheap unit vectors, so that a test of memory does not wait for a model."""

    name = "fast"
    dimensions = 8

    def _embed_batch(self, texts, purpose):
        out = np.zeros((len(texts), self.dimensions), np.float32)
        out[np.arange(len(texts)), [len(t) % self.dimensions for t in texts]] = 1.0
        return out


def test_a_large_file_is_indexed_in_bounded_memory(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    line = "The archive keeps every report of the quarter in one long text file.\n"
    megabytes = 8
    with (folder / "large.txt").open("w", encoding="utf-8") as fh:
        for n in range(megabytes * 1_000_000 // len(line)):
            fh.write(f"{n} {line}" + ("\n" if n % 7 == 6 else ""))
    rag = RAGPipeline(tmp_path / "index", embedder=FastEmbedder(), keyword=False, retriever="dense")
    tracemalloc.start()
    try:
        report = rag.ingest_folder(folder)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.chunks_added == rag.store.count() > 8000
    # beyond what the index keeps, ingestion holds a part and a few batches at a time
    # (about 9 MB here); reading the file whole and chunking it at once took 33 MB, and
    # grows with the file
    assert peak - kept < 16_000_000
    assert not rag.manifest.deleting


def _pipeline(path, embedder=None):
    return RAGPipeline(
        path,
        embedder=embedder or HashingEmbedder(dimensions=16),
        chunker=RecursiveChunker(size=40, overlap=0, unit="chars"),
    )


def _big(version: int) -> Document:
    text = " ".join(f"v{version} sentence {i} of the long report." for i in range(120))
    return Document(id="big", text=text)


def _ids(version: int) -> set[str]:
    """The chunk ids of ``_big(version)``."""
    with _pipeline(None) as scratch:
        scratch.ingest([_big(version)])
        return set(scratch.manifest.entries["doc:big"]["chunks"])


@pytest.fixture
def small_parts(monkeypatch):
    monkeypatch.setattr(writer_module, "_FLUSH_CHUNKS", 8)
    monkeypatch.setattr(writer_module, "_WHOLE_CHUNKS", 16)


def test_a_source_larger_than_one_store_call_is_written_in_parts(tmp_path, small_parts):
    rag = _pipeline(tmp_path)
    calls = []
    upsert = rag.store.upsert

    def counting_upsert(ids, *args, **kwargs):
        calls.append(len(ids))
        return upsert(ids, *args, **kwargs)

    rag.store.upsert = counting_upsert
    report = rag.ingest([_big(1)])
    assert len(calls) > 3
    assert max(calls) <= 8
    assert report.chunks_added == sum(calls) == rag.store.count() == len(rag.keyword)
    assert all_ids(rag.store) == set(rag.manifest.entries["doc:big"]["chunks"])
    assert not rag.manifest.deleting
    report = rag.ingest([_big(2)])  # replaced whole, in parts
    assert report.updated == ["big"]
    assert all_ids(rag.store) == set(rag.manifest.entries["doc:big"]["chunks"])
    assert all_ids(rag.store) == _ids(2)


def test_a_source_failing_midway_keeps_its_old_version(tmp_path, small_parts):
    rag = _pipeline(tmp_path)
    rag.ingest([_big(1)])
    before = all_ids(rag.store)

    def documents():
        for n in range(10):
            yield Document(id=f"big:part{n}", text=_big(2).text)
        raise UnreadableFileError("big", "the disk went away")

    report = IngestReport()
    rag.writer.write([PendingSource("doc:big", "new-hash", "big", documents())], report)
    assert [(p.path, p.reason) for p in report.failed] == [("big", "the disk went away")]
    assert all_ids(rag.store) == before
    assert len(rag.keyword) == len(before)
    assert all(i in rag.keyword for i in before)
    assert not rag.manifest.deleting
    rag.close()
    assert not Manifest(tmp_path / "manifest.json").deleting


@pytest.mark.parametrize("after", [1, 3, 6, 40])
def test_a_crash_while_writing_parts_leaves_one_whole_version(tmp_path, small_parts, after):
    with _pipeline(tmp_path) as rag:
        rag.ingest([_big(1)])
        old = set(rag.manifest.entries["doc:big"]["chunks"])
    new = _ids(2)

    def child(fd):
        rag = _pipeline(tmp_path)
        upsert = rag.store.upsert
        count = iter(range(10**6))

        def announced(ids, *args, **kwargs):
            n = next(count)
            os.write(fd, f"begin {n} upsert\n".encode())
            upsert(ids, *args, **kwargs)
            os.write(fd, f"ack {n}\n".encode())

        rag.store.upsert = announced
        rag.ingest([_big(2)])
        os.write(fd, b"done\n")

    lines = run_killed(child, after)
    with _pipeline(tmp_path) as again:
        found = all_ids(again.store)
        assert found in (old, new), f"killed after {lines[-1:]}: a mix of versions"
        assert found == set(again.manifest.entries["doc:big"]["chunks"])
        assert len(again.keyword) == len(found)
        assert all(i in again.keyword for i in found)
        assert not again.manifest.deleting
    if after == 40:
        assert lines[-1] == "done"
        assert found == new


def test_a_write_in_parts_that_failed_is_retried_whole_in_the_same_process(tmp_path, small_parts):
    rag = _pipeline(tmp_path)
    rag.ingest([_big(1)])
    upsert = rag.store.upsert
    calls = iter(range(100))

    def failing(ids, *args, **kwargs):
        if next(calls) == 3:
            raise OSError("disk full")
        upsert(ids, *args, **kwargs)

    rag.store.upsert = failing
    with pytest.raises(OSError, match="disk full"):
        rag.ingest([_big(2)])
    rag.store.upsert = upsert
    assert rag.ingest([_big(2)]).updated == ["big"]
    chunks = rag.manifest.entries["doc:big"]["chunks"]
    assert len(chunks) == len(set(chunks))
    assert set(chunks) == all_ids(rag.store) == _ids(2)
    assert not rag.manifest.deleting
