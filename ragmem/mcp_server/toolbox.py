"""What the MCP tools call: the memories and document collections of one store folder,
seen through the scope of whoever is calling.

Nothing here imports the MCP SDK; ``ragmem.mcp_server.tools`` turns these methods into
tools. A store folder holds one memory per tenant in ``_memory/TENANT/`` (the layout of
``ragmem serve``; a server without keys is tenant ``default``) and one document
collection per other subfolder (as ``ragmem index PATH --store DIR/NAME`` builds them).
"""

from __future__ import annotations

import errno
import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ragmem.agents.memory import Memory
from ragmem.errors import (
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    RagmemError,
    StoreLockedError,
)
from ragmem.mcp_server.documents import Collections
from ragmem.mcp_server.principal import Principal, valid_name
from ragmem.mcp_server.results import (
    AddMemoryResult,
    DeleteResult,
    HistoryResult,
    MemoryChangeOut,
    MemoryEvent,
    MemoryHit,
    MemoryListResult,
    MemoryRecord,
    MemoryResult,
    MemorySearchResult,
    PurgeResult,
)

if TYPE_CHECKING:
    from ragmem.agents.records import MemoryItem
    from ragmem.embedders.base import Embedder
    from ragmem.llms.base import LLM

__all__ = ["MEMORY_DIR", "Principal", "Toolbox", "error_message", "parse_time"]

MEMORY_DIR = "_memory"
_FULL_DISK = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}

StatusChoice = Literal["active", "superseded", "deleted", "all"]


def parse_time(name: str, text: str) -> datetime:
    """An ISO 8601 date or time as an aware datetime (UTC when no offset is given)."""
    value = text.strip()
    if value[-1:] in ("Z", "z"):  # Python 3.10's fromisoformat does not read the Z suffix
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(
            f"{name} must be an ISO 8601 date or time such as 2026-05-01 or "
            f"2026-05-01T09:30:00Z, got {text!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def error_message(exc: BaseException) -> str | None:
    """What to tell the model about a failure ragmem anticipates; None for anything else."""
    if isinstance(exc, StoreLockedError):
        return (
            f"{exc}: another ragmem process (a second `ragmem mcp`, or `ragmem index`) is "
            "using it; stop it or give this server another --store"
        )
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        if "full" in text:
            return f"the disk is full; nothing more can be written ({text})"
        if "locked" in text:
            return f"the memory database is locked by another process ({text})"
        return f"storage error: {text}"
    if isinstance(exc, OSError) and exc.errno in _FULL_DISK:
        return f"the disk is full; nothing more can be written ({exc})"
    if isinstance(exc, (RagmemError, OSError)):
        return " ".join(str(exc).split()) or type(exc).__name__
    return None


class Toolbox:
    """The memory and the document collections of one store folder, one method per tool.

    Every method takes the ``Principal`` it acts for: memories of other scopes and
    collections outside its list are reported as not found. The memory opens at its
    first use, so a server whose store is locked by another process still starts and
    answers each call with that reason.

    Args:
        store: the store folder (created if missing).
        embedder: registered embedder name for the memory and for new collections
            (default: the bundled local model).
        llm: chat model that lets ``add_memory`` extract facts (``infer``).

    Attributes:
        documents: the document collections (``list``, ``search``, ``add``).

    Example:
        >>> import tempfile
        >>> box = Toolbox(tempfile.mkdtemp(), embedder="hashing")
        >>> ana = Principal(user_id="ana")
        >>> print(box.add_memory(ana, text="I live in Lisbon").changes[0].event)
        ADD
        >>> box.search_memory(ana, "where do I live", k=1).hits[0].text
        'I live in Lisbon'
        >>> box.close()
    """

    def __init__(
        self, store: str | Path, *, embedder: str | None = None, llm: LLM | None = None
    ) -> None:
        self.path = Path(store)
        self.path.mkdir(parents=True, exist_ok=True)
        self.embedder_name = embedder
        self.llm = llm
        self._embedder: Embedder | None = None
        self._memories: dict[str, Memory] = {}
        self._memory_locks: dict[str, threading.RLock] = {}
        self._open_lock = threading.Lock()
        self.documents = Collections(self.path, embedder, self._shared_embedder)

    # -- memory -------------------------------------------------------------------------------

    def _shared_embedder(self) -> Embedder:
        """The embedder collections built with the same model reuse (one copy of it)."""
        if self._embedder is None:
            opened = next(iter(self._memories.values()), None)
            if self.embedder_name is None and opened is not None:
                self._embedder = opened.embedder
            else:
                from ragmem.registry import get_embedder

                self._embedder = get_embedder(self.embedder_name or "local")
        return self._embedder

    def memory(self, tenant: str = "default") -> Memory:
        """A tenant's memory, opened at first use (StoreLockedError while another has it)."""
        with self._open_lock:
            found = self._memories.get(tenant)
            if found is not None:
                return found
            if not valid_name(tenant):
                raise ConfigurationError(f"invalid tenant name {tenant!r}")
            # without --embedder the memory chooses (the one it was built with, or the default)
            embedder = self._shared_embedder() if self.embedder_name else None
            memory = Memory(self.path / MEMORY_DIR / tenant, embedder=embedder, llm=self.llm)
            self._memories[tenant] = memory
            return memory

    def _lock(self, who: Principal) -> threading.RLock:
        """The lock that serialises calls on one tenant's memory."""
        with self._open_lock:
            return self._memory_locks.setdefault(who.tenant, threading.RLock())

    def _owned(self, who: Principal, memory_id: str) -> MemoryItem:
        try:
            item = self.memory(who.tenant).get(memory_id)
        except NotFoundError:
            item = None
        # another scope's memory is reported exactly like one that does not exist
        if (
            item is None
            or item.user_id != who.user_id
            or (who.agent_id is not None and item.agent_id != who.agent_id)
        ):
            raise NotFoundError([memory_id], what="memory id")
        return item

    def add_memory(
        self,
        who: Principal,
        *,
        text: str | None = None,
        messages: Sequence[dict[str, str]] | None = None,
        key: str | None = None,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        observed_at: str | None = None,
        infer: bool = False,
    ) -> AddMemoryResult:
        """Remember a text, or chat messages (one memory per message, or facts with infer)."""
        who.check_write()
        if (text is None) == (messages is None):
            raise InvalidInputError("give either text or messages (not both)")
        content: str | Sequence[dict[str, str]] = text if text is not None else messages or []
        if infer and self.llm is None:
            raise ConfigurationError(
                "infer needs an LLM: start the server with --model (and --base-url)"
            )
        stamp = None if observed_at is None else parse_time("observed_at", observed_at)
        with self._lock(who):
            changes = self.memory(who.tenant).add(
                content,
                user_id=who.user_id,
                agent_id=who.agent_id,
                session_id=session_id,
                metadata=metadata,
                timestamp=None if stamp is None else stamp.timestamp(),
                key=key,
                infer=infer,
            )
        return AddMemoryResult(
            changes=[
                MemoryChangeOut(
                    event=c.event,
                    id=c.item.id,
                    text=c.item.text,
                    merged_into=c.merged_into,
                    superseded=c.superseded,
                )
                for c in changes
            ]
        )

    def search_memory(
        self,
        who: Principal,
        query: str,
        *,
        k: int = 5,
        min_score: float | None = None,
        after: str | None = None,
        before: str | None = None,
        as_of: str | None = None,
        session_id: str | None = None,
        where: dict[str, Any] | None = None,
    ) -> MemorySearchResult:
        """The memories in scope most relevant to ``query``, best first."""
        options: dict[str, Any] = {}
        for name, value in (("after", after), ("before", before), ("as_of", as_of)):
            if value is not None:
                options[name] = parse_time(name, value)
        if min_score is not None:
            options["min_score"] = min_score
        with self._lock(who):
            hits = self.memory(who.tenant).search(
                query,
                user_id=who.user_id,
                agent_id=who.agent_id,
                session_id=session_id,
                k=k,
                where=where,
                **options,
            )
        return MemorySearchResult(query=query, hits=[MemoryHit.of(h) for h in hits])

    def get_memory(self, who: Principal, memory_id: str) -> MemoryResult:
        """One memory of this scope, whatever its status."""
        with self._lock(who):
            return MemoryResult(memory=MemoryRecord.of(self._owned(who, memory_id)))

    def list_memories(
        self,
        who: Principal,
        *,
        status: StatusChoice = "active",
        session_id: str | None = None,
        limit: int = 50,
    ) -> MemoryListResult:
        """Memories of this scope, oldest first."""
        with self._lock(who):
            items = self.memory(who.tenant).list(
                user_id=who.user_id,
                agent_id=who.agent_id,
                session_id=session_id,
                status=None if status == "all" else status,
                limit=limit,
            )
        return MemoryListResult(memories=[MemoryRecord.of(i) for i in items])

    def update_memory(
        self,
        who: Principal,
        memory_id: str,
        *,
        text: str | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
    ) -> MemoryResult:
        """Change a memory in place; the previous version stays in its history."""
        who.check_write()
        if text is None and metadata is None and importance is None:
            raise InvalidInputError("give text, metadata or importance to change")
        with self._lock(who):
            self._owned(who, memory_id)
            item = self.memory(who.tenant).update(
                memory_id, text, metadata=metadata, importance=importance
            )
        return MemoryResult(memory=MemoryRecord.of(item))

    def delete_memory(self, who: Principal, memory_id: str) -> DeleteResult:
        """Hide a memory from search (soft: it stays in its history)."""
        who.check_write()
        with self._lock(who):
            self._owned(who, memory_id)
            self.memory(who.tenant).delete(memory_id)
        return DeleteResult(id=memory_id, status="deleted")

    def memory_history(self, who: Principal, memory_id: str) -> HistoryResult:
        """Every change to a memory of this scope, oldest first."""
        with self._lock(who):
            self._owned(who, memory_id)
            events = self.memory(who.tenant).history(memory_id)
        return HistoryResult(id=memory_id, events=[MemoryEvent.of(e) for e in events])

    def purge_memories(
        self,
        who: Principal,
        *,
        ids: Sequence[str] | None = None,
        session_id: str | None = None,
        everything: bool = False,
    ) -> PurgeResult:
        """Erase memories for good: the given ids, one session, or the whole scope."""
        who.check_write()
        chosen = [ids is not None, session_id is not None, everything]
        if sum(chosen) != 1:
            raise InvalidInputError("give exactly one of ids, session_id or everything=true")
        with self._lock(who):
            for memory_id in ids or ():
                self._owned(who, memory_id)
            purge = self.memory(who.tenant).purge
            if ids is not None:  # the scope as well: ids outside it are never erased
                count = (
                    purge(user_id=who.user_id, agent_id=who.agent_id, ids=list(ids)) if ids else 0
                )
            else:
                count = purge(user_id=who.user_id, agent_id=who.agent_id, session_id=session_id)
        return PurgeResult(purged=int(count))

    def close(self) -> None:
        """Close the memories and every open collection."""
        self.documents.close()
        with self._open_lock:
            for memory in self._memories.values():
                memory.close()
            self._memories.clear()
