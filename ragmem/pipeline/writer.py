"""Incremental indexing: chunk, embed and write sources, replacing changed ones atomically.

Chunk ids carry the source's content hash (``doc_id@hash#index``), so a changed source's
new chunks never overwrite the old ones: the new version is written in one store call,
then the old chunks are deleted, then the manifest records the new version. A crash at
any point leaves the old version, both versions, or the new one searchable, never a
half-written file, and the next run finishes the job (writes are idempotent).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ragmem.errors import InvalidInputError
from ragmem.ingest import FileProblem, IngestReport, Manifest, file_sha256, list_files

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from ragmem.embedders.base import Embedder
    from ragmem.pipeline.defaults import Chunker
    from ragmem.stores.base import VectorStore
    from ragmem.types import Document, Metadata

__all__ = ["IndexWriter", "PendingSource", "ScanResult", "ScannedFile", "scan_folder"]

# Chunks embedded per call: large enough for efficient batches, small enough that a long
# ingestion persists its progress often.
_FLUSH_CHUNKS = 256


@dataclass
class PendingSource:
    """One file or document to (re)index: its manifest key, content hash and documents."""

    key: str
    sha256: str
    label: str
    documents: list[Document]


@dataclass
class ScannedFile:
    """A file whose content differs from what the manifest recorded."""

    path: Path
    key: str
    label: str
    sha256: str


@dataclass
class ScanResult:
    """Files of a folder sorted into changed, unchanged and removed."""

    changed: list[ScannedFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass
class _Chunk:
    id: str
    text: str
    metadata: Metadata


def scan_folder(root: Path, manifest: Manifest, report: IngestReport) -> ScanResult:
    """Hash every supported file under ``root`` and compare with the manifest.

    Unchanged, skipped and unreadable files go straight into ``report``.
    """
    files, skipped = list_files(root)
    report.skipped.extend(skipped)
    result = ScanResult()
    seen: set[str] = set()
    for path in files:
        key = "file:" + path.resolve().as_posix()
        label = path.as_posix()
        seen.add(key)
        try:
            digest = file_sha256(path)
        except OSError as exc:
            report.failed.append(FileProblem(path=label, reason=exc.strerror or str(exc)))
            continue
        entry = manifest.entries.get(key)
        if entry is not None and entry["sha256"] == digest:
            report.unchanged.append(label)
        else:
            result.changed.append(ScannedFile(path, key, label, digest))
    scope = "file:" + root.resolve().as_posix()
    for key in manifest.entries:
        inside = key == scope or key.startswith(scope.rstrip("/") + "/")
        if inside and key not in seen:
            result.removed.append(key)
    return result


class IndexWriter:
    """Writes sources to the store (and keyword index) and keeps the manifest in step."""

    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        chunker: Chunker,
        manifest: Manifest,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.chunker = chunker
        self.manifest = manifest

    def write(
        self, sources: list[PendingSource], report: IngestReport, *, progress: bool = False
    ) -> None:
        """Index the sources whose hash differs from the manifest's; skip the others."""
        todo = []
        for source in sources:
            entry = self.manifest.entries.get(source.key)
            if entry is not None and entry["sha256"] == source.sha256:
                report.unchanged.append(source.label)
            else:
                todo.append(source)
        batch: list[tuple[PendingSource, list[_Chunk]]] = []
        pending_chunks = 0
        try:
            for source in _progress(todo, enabled=progress):
                chunks = self._chunks(source)
                batch.append((source, chunks))
                pending_chunks += len(chunks)
                if pending_chunks >= _FLUSH_CHUNKS:
                    self._flush(batch, report)
                    batch, pending_chunks = [], 0
            self._flush(batch, report)
        finally:
            self.manifest.save()

    def remove(self, keys: list[str], report: IngestReport) -> None:
        """Delete every chunk of the given sources."""
        try:
            for key in keys:
                entry = self.manifest.entries[key]
                if entry["chunks"]:
                    self.store.delete(entry["chunks"])
                del self.manifest.entries[key]
                report.removed.append(entry["label"])
                report.chunks_deleted += len(entry["chunks"])
        finally:
            self.manifest.save()

    def _chunks(self, source: PendingSource) -> list[_Chunk]:
        out = []
        for doc in source.documents:
            for chunk in self.chunker.chunk(doc):
                if not chunk.text.strip():
                    continue  # nothing to embed or retrieve in blank space
                metadata: Metadata = {
                    **doc.metadata,
                    **chunk.metadata,
                    "doc_id": chunk.doc_id,
                    "start": chunk.start,
                    "end": chunk.end,
                    "chunk_index": chunk.index,
                }
                chunk_id = f"{chunk.doc_id}@{source.sha256[:12]}#{chunk.index}"
                out.append(_Chunk(chunk_id, chunk.text, metadata))
        if len({c.id for c in out}) != len(out):
            raise InvalidInputError(f"{source.label}: two documents or chunks share an id")
        return out

    def _flush(self, batch: list[tuple[PendingSource, list[_Chunk]]], report: IngestReport) -> None:
        texts = [c.text for _, chunks in batch for c in chunks]
        vectors = (
            self.embedder.embed(texts)
            if texts
            else np.empty((0, self.embedder.dimensions), np.float32)
        )
        report.embedded += len(texts)
        offset = 0
        for source, chunks in batch:
            ids = [c.id for c in chunks]
            part = vectors[offset : offset + len(chunks)]
            offset += len(chunks)
            if ids:  # one call per source: its new version lands whole
                self.store.upsert(ids, part, [c.text for c in chunks], [c.metadata for c in chunks])
            old = self.manifest.entries.get(source.key)
            keep = set(ids)
            stale = [i for i in old["chunks"] if i not in keep] if old else []
            if stale:
                self.store.delete(stale)
            self.manifest.entries[source.key] = {
                "sha256": source.sha256,
                "label": source.label,
                "chunks": ids,
            }
            (report.updated if old else report.added).append(source.label)
            report.chunks_added += len(ids)
            report.chunks_deleted += len(stale)


def _progress(items: list[PendingSource], *, enabled: bool) -> Iterator[PendingSource]:
    if not enabled or not items:
        yield from items
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield from _plain_progress(items)
        return
    yield from tqdm(items, desc="indexing", unit="file")


def _plain_progress(items: list[PendingSource]) -> Iterator[PendingSource]:
    # without tqdm: one line per tenth of the work, on stderr
    step = max(1, len(items) // 10)
    for i, item in enumerate(items, start=1):
        yield item
        if i % step == 0 or i == len(items):
            os.write(2, f"indexing: {i}/{len(items)} files\n".encode())
