"""What a server holds: its settings, the open collections and each tenant's memory."""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragmem.errors import ConfigurationError, InvalidInputError, NotFoundError
from ragmem.server.auth import valid_name
from ragmem.stores.local.locks import ReadWriteLock

if TYPE_CHECKING:
    from ragmem.agents.memory import Memory
    from ragmem.embedders.base import Embedder
    from ragmem.llms.base import LLM
    from ragmem.pipeline import RAGPipeline
    from ragmem.retrievers.base import Retriever
    from ragmem.server.auth import KeyRing

__all__ = ["Collection", "Settings", "State"]

_CONFIG = "ragmem.json"
MEMORY_DIR = "_memory"


@dataclass
class Settings:
    """Everything ``ragmem serve`` is told on its command line.

    Args:
        store: the folder of collections (one subfolder each) and of the memory folder.
        keys: the accepted API keys; ``None`` serves every request as the ``default`` tenant.
        embedder: registered embedder name for new collections, memory and /v1/embeddings.
        embedder_options: options for that embedder.
        llm: the chat model answering /v1/chat/completions; ``None`` answers extractively.
        workers: threads for writes, ingests and memory changes (requests doing such
            work at once).
        search_workers: threads for searches and embeddings; by default one per core
            (see ``Service.read``).
        queue: requests allowed to wait for a worker; past it the server answers 503.
        max_body_bytes: largest request body accepted (413 beyond).
        timeout: seconds a request may take before it is answered 504.
        job_batch: documents indexed per step of an ingest job (its progress unit).
    """

    store: Path
    keys: KeyRing | None = None
    embedder: str = "local"
    embedder_options: dict[str, Any] = field(default_factory=dict)
    llm: LLM | None = None
    workers: int = 8
    search_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    queue: int = 64
    max_body_bytes: int = 32 * 1024 * 1024
    timeout: float = 60.0
    job_batch: int = 64


@dataclass
class Collection:
    """An open collection: its pipeline, and the lock that lets reads share and writes queue."""

    name: str
    pipeline: RAGPipeline
    lock: ReadWriteLock = field(default_factory=ReadWriteLock)
    retrievers: dict[str, Retriever] = field(default_factory=dict)


class State:
    """The collections under ``settings.store`` and one ``Memory`` per tenant.

    Collections open lazily on first use and stay open; creating and deleting them is
    serialised by one lock, so two requests never open the same folder twice.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.store
        self.root.mkdir(parents=True, exist_ok=True)
        self._open: dict[str, Collection] = {}
        self._memories: dict[str, Memory] = {}
        self._lock = threading.Lock()
        self._embedder: Embedder | None = None

    @property
    def embedder(self) -> Embedder:
        """The server's embedder (for memory and /v1/embeddings), built on first use."""
        with self._lock:
            if self._embedder is None:
                from ragmem.registry import get_embedder

                self._embedder = get_embedder(
                    self.settings.embedder, **self.settings.embedder_options
                )
            return self._embedder

    def names(self) -> list[str]:
        """Every collection in the store folder, sorted."""
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and valid_name(p.name))

    def opened(self, name: str) -> Collection | None:
        """Collection ``name`` if it is already open (no file is touched)."""
        return self._open.get(name)

    def get(self, name: str) -> Collection:
        """The open collection ``name``.

        Raises:
            NotFoundError: there is no such collection.
        """
        with self._lock:
            found = self._open.get(name)
            if found is not None:
                return found
            folder = self.root / name
            if not valid_name(name) or not folder.is_dir():
                raise NotFoundError([name], what="collection")
            # an index records its embedder with its first write; until then it takes ours
            return self._open_locked(name, create=not (folder / _CONFIG).exists())

    def create(self, name: str, *, retriever: str = "hybrid") -> tuple[Collection, bool]:
        """Open collection ``name``, creating it with the server's embedder when missing.

        Returns:
            The collection and whether it was created.
        """
        if not valid_name(name):
            raise InvalidInputError(
                f"collection names are 1-64 letters, digits, '_', '.' or '-', got {name!r}"
            )
        with self._lock:
            if name in self._open:
                return self._open[name], False
            existed = (self.root / name).is_dir()
            return self._open_locked(
                name, create=not (self.root / name / _CONFIG).exists()
            ), not existed

    def _open_locked(self, name: str, *, create: bool) -> Collection:
        from ragmem.pipeline import RAGPipeline

        options: dict[str, Any] = {"llm": self.settings.llm}
        if create:
            options.update(
                embedder=self.settings.embedder, embedder_options=self.settings.embedder_options
            )
        pipeline = RAGPipeline(self.root / name, **options)
        collection = Collection(name, pipeline)
        self._open[name] = collection
        return collection

    def delete(self, name: str) -> None:
        """Close collection ``name`` and remove its folder."""
        collection = self.get(name)
        with self._lock, collection.lock.write():
            collection.pipeline.close()
            self._open.pop(name, None)
            shutil.rmtree(self.root / name)

    def opened_memory(self, tenant: str) -> Memory | None:
        """The memory of ``tenant`` if it is already open (no file is touched)."""
        return self._memories.get(tenant)

    def memory(self, tenant: str) -> Memory:
        """The memory of ``tenant``, in a folder of its own under the store's memory folder.

        Each tenant has a separate ledger and index, so no filter or scope a request
        names can reach another tenant's memories.
        """
        with self._lock:
            found = self._memories.get(tenant)
            if found is not None:
                return found
        embedder = self.embedder
        with self._lock:
            if tenant not in self._memories:
                from ragmem.agents.memory import Memory

                if not valid_name(tenant):
                    raise ConfigurationError(f"invalid tenant name {tenant!r}")
                self._memories[tenant] = Memory(
                    self.root / MEMORY_DIR / tenant, embedder=embedder, llm=self.settings.llm
                )
            return self._memories[tenant]

    def close(self) -> None:
        """Close every open collection and memory."""
        with self._lock:
            for collection in self._open.values():
                with collection.lock.write():
                    collection.pipeline.close()
            for memory in self._memories.values():
                memory.close()
            self._open.clear()
            self._memories.clear()
