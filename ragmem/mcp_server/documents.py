"""The document collections of a store folder: one ``RAGPipeline`` index per subfolder."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragmem.errors import ConfigurationError, InvalidInputError, NotFoundError
from ragmem.mcp_server.principal import Principal, valid_name
from ragmem.mcp_server.results import (
    AddDocumentResult,
    CollectionsResult,
    DocumentHit,
    DocumentSearchResult,
)
from ragmem.types import Document

if TYPE_CHECKING:
    from ragmem.embedders.base import Embedder
    from ragmem.pipeline import RAGPipeline

__all__ = ["Collections"]

_PIPELINE_CONFIG = "ragmem.json"  # the file that marks a folder as a RAGPipeline index


class Collections:
    """Search and add documents in the collections of ``path`` that a principal may use.

    Searches use read-only pipelines, reopened when a collection's files change (so an
    index rebuilt meanwhile by ``ragmem index`` is seen); each addition opens the
    collection for writing only for its own duration, so ``ragmem index`` can write the
    collection between calls.

    Args:
        path: the store folder.
        embedder_name: the registered embedder of new collections (default ``local``).
        shared_embedder: returns the server's embedder, reused by collections built with it.

    Example:
        >>> import tempfile
        >>> from ragmem import HashingEmbedder
        >>> shelf = Collections(tempfile.mkdtemp(), "hashing", lambda: HashingEmbedder())
        >>> shelf.list(Principal(user_id="ana")).collections
        []
    """

    def __init__(
        self,
        path: str | Path,
        embedder_name: str | None,
        shared_embedder: Callable[[], Embedder],
    ) -> None:
        self.path = Path(path)
        self.embedder_name = embedder_name
        self.shared_embedder = shared_embedder
        self._readers: dict[str, tuple[tuple[Any, ...], RAGPipeline]] = {}
        self._lock = threading.Lock()
        self._writer_locks: dict[str, threading.Lock] = {}

    def list(self, who: Principal) -> CollectionsResult:
        """The collections of the store folder that ``who`` may use."""
        names = sorted(
            entry.name
            for entry in self.path.iterdir()
            if valid_name(entry.name) and (entry / _PIPELINE_CONFIG).is_file()
        )
        if who.collections is not None:
            names = [n for n in names if n in who.collections]
        return CollectionsResult(collections=names)

    def _folder(self, who: Principal, name: str, *, create: bool) -> Path:
        if not valid_name(name):
            raise InvalidInputError(
                f"collection names are 1-64 letters, digits, '_', '.' or '-', starting with a "
                f"letter or digit, got {name!r}"
            )
        allowed = who.collections is None or name in who.collections
        path = self.path / name
        if allowed and (create or (path / _PIPELINE_CONFIG).is_file()):
            return path
        known = self.list(who).collections
        error = NotFoundError([name], what="collection")
        error.args = (f"{error}; available: {', '.join(known) or 'none yet'}",)
        raise error

    def _open(self, path: Path, *, read_only: bool) -> RAGPipeline:
        from ragmem.pipeline import RAGPipeline

        if not (path / _PIPELINE_CONFIG).is_file():  # a new collection records the name
            return RAGPipeline(path, embedder=self.embedder_name or "local")
        try:  # share the server's embedder (one copy of the model) when the index allows
            return RAGPipeline(path, embedder=self.shared_embedder(), read_only=read_only)
        except ConfigurationError:
            return RAGPipeline(path, read_only=read_only)

    def _reader(self, name: str) -> RAGPipeline:
        # read-only pipelines see the index as of opening: reopen when its files change
        path = self.path / name
        signature = _signature(path)
        with self._lock:
            cached = self._readers.get(name)
            if cached is not None and cached[0] == signature:
                return cached[1]
            # a replaced pipeline is left to the garbage collector, not closed: a search in
            # another thread may still be using it
            pipeline = self._open(path, read_only=True)
            self._readers[name] = (signature, pipeline)
            return pipeline

    def search(
        self,
        who: Principal,
        query: str,
        *,
        collection: str | None = None,
        k: int = 5,
        where: dict[str, Any] | None = None,
    ) -> DocumentSearchResult:
        """The best passages for ``query`` in one collection, or in all, best first."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query must be a non-empty string")
        if collection is not None:
            self._folder(who, collection, create=False)
            names = [collection]
        else:
            names = self.list(who).collections
        hits: list[DocumentHit] = []
        for name in names:
            found = self._reader(name).search(query, k=k, where=where)
            hits += [DocumentHit.of(name, h) for h in found]
        hits.sort(key=lambda h: -h.score)
        return DocumentSearchResult(query=query, hits=hits[:k])

    def add(
        self,
        who: Principal,
        text: str,
        *,
        collection: str = "documents",
        doc_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AddDocumentResult:
        """Chunk, embed and index one document (replacing an older one with its id)."""
        who.check_write()
        path = self._folder(who, collection, create=True)
        if doc_id is None:
            doc_id = hashlib.sha256(text.encode()).hexdigest()[:16]
        document = Document(id=doc_id, text=text, metadata=metadata or {})
        with self._lock:
            lock = self._writer_locks.setdefault(collection, threading.Lock())
        with lock, self._open(path, read_only=False) as pipeline:
            report = pipeline.ingest([document])
        event = "added" if report.added else "updated" if report.updated else "unchanged"
        return AddDocumentResult(
            collection=collection, id=doc_id, event=event, chunks=report.chunks_added
        )

    def close(self) -> None:
        """Close every open collection."""
        with self._lock:
            for _, pipeline in self._readers.values():
                pipeline.close()
            self._readers.clear()


def _signature(path: Path) -> tuple[Any, ...]:
    """Names, sizes and modification times of an index's files (changes when it is written)."""
    entries = []
    for folder in (path, path / "vectors"):
        names = sorted(os.listdir(folder)) if folder.is_dir() else []
        for name in names:
            try:
                stat = (folder / name).stat()
            except FileNotFoundError:  # removed by a writer's compaction meanwhile
                continue
            entries.append((folder.name, name, stat.st_size, stat.st_mtime_ns))
    return tuple(entries)
