"""Incremental indexing: chunk, embed and write sources, replacing changed ones atomically.

Chunk ids carry the source's content hash (``doc_id@hash#index``), so a changed source's
new chunks never overwrite the old ones: the new version is written in one store call,
then the old chunks are deleted, then the manifest records the new version. A crash at
any point leaves the old version, both versions, or the new one searchable, never a
half-written file, and the next run finishes the job (writes are idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ragmem.errors import InvalidInputError
from ragmem.ingest import FileProblem, IngestReport, Manifest, file_sha256, list_files
from ragmem.pipeline.progress import ProgressLike, ProgressReporter

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ragmem.embedders.base import Embedder
    from ragmem.pipeline.defaults import Chunker
    from ragmem.retrievers.bm25 import BM25Retriever
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
    chunker: Chunker | None = None  # None: the writer's


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


def scan_folder(
    root: Path, manifest: Manifest, report: IngestReport, *, follow_symlinks: bool = False
) -> ScanResult:
    """Hash every supported file under ``root`` and compare with the manifest.

    Unchanged, skipped and unreadable files go straight into ``report``.
    """
    files, skipped = list_files(root, follow_symlinks=follow_symlinks)
    report.skipped.extend(skipped)
    result = ScanResult()
    seen: set[str] = set()
    labels: dict[str, str] = {}
    for path in files:
        key = "file:" + path.resolve().as_posix()
        label = path.as_posix()
        if key in labels:  # a symlink to a file already listed
            report.skipped.append(FileProblem(path=label, reason=f"same file as {labels[key]}"))
            continue
        labels[key] = label
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
    """Writes sources to the store and the keyword index, and keeps the manifest in step.

    The keyword index is saved before the manifest, so it is never older than what the
    manifest promises; whatever a crash left beyond the manifest is redone next time.
    """

    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        chunker: Chunker,
        manifest: Manifest,
        *,
        keyword: BM25Retriever | None = None,
        keyword_path: Path | None = None,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.chunker = chunker
        self.manifest = manifest
        self.keyword = keyword
        self.keyword_path = keyword_path
        self.on_commit = on_commit

    def commit(self) -> None:
        """Persist the keyword index, then the manifest (after ``on_commit``, if set)."""
        if self.on_commit is not None:
            self.on_commit()
        if self.keyword is not None and self.keyword_path is not None:
            self.keyword.save(self.keyword_path)
        self.manifest.save()

    def delete_sources(self, keys: list[str], report: IngestReport) -> None:
        """Delete the given sources whole, crash-safely.

        The manifest first records the sources as gone and their chunk ids as pending
        deletion; then the chunks leave the store and the keyword index; then the
        pending list is cleared. A crash in between is finished by ``finish_deletes``
        when the index is next opened for writing.
        """
        if not keys:
            return
        for key in keys:
            entry = self.manifest.entries.pop(key)
            self.manifest.deleting.extend(entry["chunks"])
            report.removed.append(entry["label"])
            report.chunks_deleted += len(entry["chunks"])
        self.manifest.save()
        self.finish_deletes()

    def finish_deletes(self) -> None:
        """Remove the chunks a (possibly interrupted) delete left pending."""
        if not self.manifest.deleting:
            return
        ids = self.manifest.deleting
        for start in range(0, len(ids), 1024):
            self._delete(ids[start : start + 1024])
        self.manifest.deleting = []
        self.commit()

    def write(
        self, sources: list[PendingSource], report: IngestReport, *, progress: ProgressLike = False
    ) -> None:
        """Index the sources whose hash differs from the manifest's; skip the others.

        Every source is chunked first, so the indexing stage (embedding and writing, the
        slow part) reports progress in chunks against a known total.
        """
        todo = []
        for source in sources:
            entry = self.manifest.entries.get(source.key)
            if entry is not None and entry["sha256"] == source.sha256:
                report.unchanged.append(source.label)
            else:
                todo.append(source)
        if not todo:
            return
        reporter = ProgressReporter(progress)
        reporter.start("chunking", len(todo), "files")
        prepared: list[tuple[PendingSource, list[_Chunk]]] = []
        for n, source in enumerate(todo, start=1):
            prepared.append((source, self._chunks(source)))
            reporter.step(n, len(todo), "files")
        total = sum(len(chunks) for _, chunks in prepared)
        reporter.start("indexing", total, "chunks")
        done = 0
        batch: list[tuple[PendingSource, list[_Chunk]]] = []
        pending_chunks = 0
        try:
            for source, chunks in prepared:
                batch.append((source, chunks))
                pending_chunks += len(chunks)
                if pending_chunks >= _FLUSH_CHUNKS:
                    self._flush(batch, report)
                    done += pending_chunks
                    reporter.step(done, total, "chunks")
                    batch, pending_chunks = [], 0
            self._flush(batch, report)
            reporter.step(total, total, "chunks")
        finally:
            self.commit()

    def _delete(self, ids: list[str]) -> None:
        if ids:
            self.store.delete(ids)
            if self.keyword is not None:
                # a retried delete may find some ids already gone from the keyword index
                present = [i for i in ids if i in self.keyword]
                if present:
                    self.keyword.delete(present)

    def _chunks(self, source: PendingSource) -> list[_Chunk]:
        out = []
        chunker = source.chunker or self.chunker
        for doc in source.documents:
            for chunk in chunker.chunk(doc):
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
            chunk_texts = [c.text for c in chunks]
            metadata = [c.metadata for c in chunks]
            if ids:  # one call per source: its new version lands whole
                self.store.upsert(ids, part, chunk_texts, metadata)
                if self.keyword is not None:
                    self.keyword.add(ids, chunk_texts, metadata)
            old = self.manifest.entries.get(source.key)
            keep = set(ids)
            stale = [i for i in old["chunks"] if i not in keep] if old else []
            self._delete(stale)
            self.manifest.entries[source.key] = {
                "sha256": source.sha256,
                "label": source.label,
                "chunks": ids,
            }
            (report.updated if old else report.added).append(source.label)
            report.chunks_added += len(ids)
            report.chunks_deleted += len(stale)
