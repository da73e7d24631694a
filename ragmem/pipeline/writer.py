"""Incremental indexing: chunk, embed and write sources, replacing changed ones atomically.

Chunk ids carry the source's content hash (``doc_id@hash#index``), so a changed source's
new chunks never overwrite the old ones: the new version is written in one store call,
then the old chunks are deleted, then the manifest records the new version. A crash at
any point leaves the old version, both versions, or the new one searchable, never a
half-written file, and the next run finishes the job (writes are idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ragmem.errors import InvalidInputError
from ragmem.ingest import FileProblem, IngestReport, Manifest, file_sha256, list_files
from ragmem.pipeline.overlap import overlapped
from ragmem.pipeline.progress import ProgressLike, ProgressReporter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from pathlib import Path

    from ragmem.embedders.base import Embedder
    from ragmem.pipeline.defaults import Chunker
    from ragmem.retrievers.bm25 import BM25Retriever
    from ragmem.stores.base import VectorStore
    from ragmem.types import Document, Metadata, Purpose, Vectors

__all__ = ["IndexWriter", "PendingSource", "ScanResult", "ScannedFile", "scan_folder"]

# Chunks embedded per call: large enough for efficient batches, small enough that the
# batches in flight between the threads hold little memory.
_FLUSH_CHUNKS = 256
# A source of at most this many chunks is written in one store call; a larger one in parts.
_WHOLE_CHUNKS = 2048


@dataclass
class PendingSource:
    """One file or document to (re)index: its manifest key, content hash and documents.

    ``documents`` may be lazy (a generator reading the file): it is iterated in the
    reading thread, and an ``InvalidInputError`` or ``ImportError`` it raises reports
    the source as unreadable. ``problems`` collects what loading skipped (bad records).
    """

    key: str
    sha256: str
    label: str
    documents: Iterable[Document]
    chunker: Chunker | None = None  # None: the writer's
    problems: list[FileProblem] = field(default_factory=list)


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


@dataclass
class _Segment:
    """A source's chunks, all of them (``whole``) or one part; ``failed``: it could not be read."""

    source: PendingSource
    chunks: list[_Chunk]
    whole: bool
    last: bool
    failed: FileProblem | None = None


@dataclass
class _Batch:
    """Segments embedded in one call, with the reading thread's counts when it made them."""

    segments: list[_Segment]
    size: int  # chunks
    files: int  # sources chunked so far
    made: int  # chunks made so far


@dataclass
class _Embedded:
    vectors: Vectors
    tokens: list[Vectors] | None


@runtime_checkable
class _BothEmbedder(Protocol):
    """An embedder that makes sentence and token vectors in one forward pass."""

    def embed_with_tokens(
        self, texts: Sequence[str], *, purpose: Purpose = "document"
    ) -> tuple[Vectors, list[Vectors]]: ...


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
        # where token vectors go (a late-interaction reranker's store), made in the same
        # forward pass as the sentence vectors when the embedder can
        self.tokens: Callable[[list[str], list[Vectors]], None] | None = None
        # chunk ids written so far of the large source being written in parts
        self._written: dict[str, list[str]] = {}

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
        self,
        sources: Iterable[PendingSource],
        report: IngestReport,
        *,
        progress: ProgressLike = False,
    ) -> None:
        """Index the sources whose hash differs from the manifest's; skip the others.

        Loading and chunking run in one thread and embedding in another, ahead of the
        writes done here, through bounded queues: memory holds a few batches, however
        many sources there are. A source of up to ``_WHOLE_CHUNKS`` chunks lands in one
        store call; a larger one is written in parts, each recorded in the manifest as
        pending deletion before it is written, so a crash (or an error reading the rest
        of the file) removes the part-written version and leaves the old one.
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
        # parts of a source that an earlier failed call left in flight
        self._written.clear()
        self.finish_deletes()
        reporter = ProgressReporter(progress)
        reporter.start("chunking", len(todo), "files")
        written = 0
        indexing = False
        try:
            for batch, (vectors, tokens) in overlapped(self._batches(todo), self._embed):
                self._write_batch(batch, vectors, tokens, report)
                written += batch.size
                # until every file is chunked, the total is extrapolated from those that are
                total = batch.made
                if batch.files < len(todo):
                    total = max(total, round(total * len(todo) / max(batch.files, 1)))
                if not indexing:
                    reporter.start("indexing", total, "chunks")
                    indexing = True
                reporter.step(written, total, "chunks")
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

    # -- reading and chunking (the producer thread) ----------------------------------------

    def _batches(self, todo: list[PendingSource]) -> Iterator[_Batch]:
        """The sources' chunks in batches of about ``_FLUSH_CHUNKS``; the last may be empty."""
        segments: list[_Segment] = []
        size = made = 0
        for n, source in enumerate(todo, start=1):
            for segment in self._segments(source):
                segments.append(segment)
                size += len(segment.chunks)
                made += len(segment.chunks)
                if size >= _FLUSH_CHUNKS:
                    yield _Batch(segments, size, n if segment.last else n - 1, made)
                    segments, size = [], 0
        yield _Batch(segments, size, len(todo), made)

    def _segments(self, source: PendingSource) -> Iterator[_Segment]:
        """One source's chunks: one whole segment, or parts once it passes ``_WHOLE_CHUNKS``."""
        chunker = source.chunker or self.chunker
        documents = iter(source.documents)
        buffer: list[_Chunk] = []
        seen: set[str] = set()
        split = False
        while True:
            try:
                document = next(documents, None)
            except (InvalidInputError, ImportError) as exc:
                yield _Segment(source, [], whole=not split, last=True, failed=_problem(source, exc))
                return
            if document is None:
                break
            for chunk in self._chunks(source, document, chunker):
                if chunk.id in seen:
                    raise InvalidInputError(f"{source.label}: two documents or chunks share an id")
                seen.add(chunk.id)
                buffer.append(chunk)
            split = split or len(buffer) > _WHOLE_CHUNKS
            while split and len(buffer) >= _FLUSH_CHUNKS:
                yield _Segment(source, buffer[:_FLUSH_CHUNKS], whole=False, last=False)
                buffer = buffer[_FLUSH_CHUNKS:]
        yield _Segment(source, buffer, whole=not split, last=True)

    def _chunks(self, source: PendingSource, doc: Document, chunker: Chunker) -> list[_Chunk]:
        out = []
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
        return out

    # -- embedding (the embedding thread) --------------------------------------------------

    def _embed(self, batch: _Batch) -> tuple[Vectors, list[Vectors] | None]:
        texts = [c.text for s in batch.segments for c in s.chunks]
        if not texts:
            return np.empty((0, self.embedder.dimensions), np.float32), None
        if self.tokens is not None and isinstance(self.embedder, _BothEmbedder):
            return self.embedder.embed_with_tokens(texts)
        return self.embedder.embed(texts), None

    # -- writing (the caller's thread) -----------------------------------------------------

    def _write_batch(
        self,
        batch: _Batch,
        vectors: Vectors,
        tokens: list[Vectors] | None,
        report: IngestReport,
    ) -> None:
        report.embedded += batch.size
        offset = 0
        for segment in batch.segments:
            end = offset + len(segment.chunks)
            part = _Embedded(vectors[offset:end], None if tokens is None else tokens[offset:end])
            offset = end
            source = segment.source
            if segment.failed is not None:
                report.failed.extend([*source.problems, segment.failed])
                if not segment.whole:  # drop what was written of it: the old version stays
                    self._written.pop(source.key, None)
                    self.finish_deletes()
            elif segment.whole:
                self._write_whole(segment, part, report)
            else:
                self._write_part(segment, part, report)

    def _write_whole(self, segment: _Segment, part: _Embedded, report: IngestReport) -> None:
        """Write a source in one store call, then delete its old version's chunks."""
        ids = self._upsert(segment.chunks, part)
        self._delete(self._replace(segment.source, ids, report))

    def _write_part(self, segment: _Segment, part: _Embedded, report: IngestReport) -> None:
        """Write part of a large source; after its last part, replace the old version."""
        source = segment.source
        written = self._written.setdefault(source.key, [])
        if segment.chunks:
            # recorded as pending deletion before it is written: a crash before the
            # source is complete leaves its old version, and the part goes on reopening
            self.manifest.deleting.extend(c.id for c in segment.chunks)
            self.commit()
            written += self._upsert(segment.chunks, part)
        if not segment.last:
            return
        del self._written[source.key]
        new = set(written)
        self.manifest.deleting = [i for i in self.manifest.deleting if i not in new]
        # the new version and the old one's deletion are promised in one manifest write
        self.manifest.deleting += self._replace(source, written, report)
        self.commit()
        self.finish_deletes()

    def _upsert(self, chunks: list[_Chunk], part: _Embedded) -> list[str]:
        ids = [c.id for c in chunks]
        if ids:
            texts = [c.text for c in chunks]
            metadata = [c.metadata for c in chunks]
            self.store.upsert(ids, part.vectors, texts, metadata)
            if self.keyword is not None:
                self.keyword.add(ids, texts, metadata)
            if self.tokens is not None and part.tokens is not None:
                self.tokens(ids, part.tokens)
        return ids

    def _replace(self, source: PendingSource, ids: list[str], report: IngestReport) -> list[str]:
        """Record ``ids`` as the source's chunks; return its old chunks not among them."""
        old = self.manifest.entries.get(source.key)
        keep = set(ids)
        stale = [i for i in old["chunks"] if i not in keep] if old else []
        self.manifest.entries[source.key] = {
            "sha256": source.sha256,
            "label": source.label,
            "chunks": ids,
        }
        report.failed.extend(source.problems)
        (report.updated if old else report.added).append(source.label)
        report.chunks_added += len(ids)
        report.chunks_deleted += len(stale)
        return stale


def _problem(source: PendingSource, exc: Exception) -> FileProblem:
    return FileProblem(path=source.label, reason=getattr(exc, "reason", None) or str(exc))
