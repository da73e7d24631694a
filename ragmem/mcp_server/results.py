"""What the MCP tools return: pydantic models for structured content, each with a compact
text rendering for the model to read.

Dates are ISO 8601 strings in UTC (``2026-12-06T21:30:00Z``): clients parse them and
models read them without converting Unix seconds.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel

from ragmem._cli_parts import snippet
from ragmem.agents.records import HistoryEvent, MemoryItem
from ragmem.agents.scope import SCOPES
from ragmem.types import Hit

__all__ = [
    "AddDocumentResult",
    "AddMemoryResult",
    "CollectionsResult",
    "DeleteResult",
    "DocumentHit",
    "DocumentSearchResult",
    "HistoryResult",
    "MemoryChangeOut",
    "MemoryEvent",
    "MemoryHit",
    "MemoryListResult",
    "MemoryRecord",
    "MemoryResult",
    "MemorySearchResult",
    "PurgeResult",
    "ToolResult",
    "iso",
]

_SNIPPET = 240  # characters of a memory shown in a result line


def iso(seconds: float | None) -> str | None:
    """Unix seconds as an ISO 8601 UTC string (None stays None)."""
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _counted(count: int, nouns: tuple[str, str], query: str, lines: list[str]) -> str:
    """``lines`` under a heading that counts what was found for ``query``."""
    noun = nouns[0] if count == 1 else nouns[1]
    return "\n".join([f"{count} {noun} for {query!r}:", *lines])


class ToolResult(BaseModel):
    """A tool's result: its fields are the structured content, ``text()`` what the model reads."""

    def text(self) -> str:
        """Compact text for the model."""
        raise NotImplementedError


class MemoryRecord(BaseModel):
    """One memory as the client sees it."""

    id: str
    text: str
    status: str
    key: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    observed_at: str
    created_at: str
    updated_at: str
    expires_at: str | None = None
    superseded_by: str | None = None
    importance: float
    mentions: int
    metadata: dict[str, Any]

    @classmethod
    def of(cls, item: MemoryItem) -> MemoryRecord:
        """The record of a stored memory."""
        return cls(
            id=item.id,
            text=item.text,
            status=item.status,
            key=item.key,
            agent_id=item.agent_id,
            session_id=item.session_id,
            observed_at=iso(item.timestamp) or "",
            created_at=iso(item.created_at) or "",
            updated_at=iso(item.updated_at) or "",
            expires_at=iso(item.expires_at),
            superseded_by=item.superseded_by,
            importance=item.importance,
            mentions=item.mentions,
            metadata=dict(item.metadata),
        )

    def line(self) -> str:
        """One line: id, date, status when not active, key, the text."""
        parts = [self.id, self.observed_at[:10]]
        if self.status != "active":
            parts.append(self.status)
        if self.key:
            parts.append(f"key={self.key}")
        return f"[{', '.join(parts)}] {snippet(self.text, _SNIPPET)}"


class MemoryResult(ToolResult):
    """``get_memory`` and ``update_memory``: one memory."""

    memory: MemoryRecord

    def text(self) -> str:
        m = self.memory
        lines = [m.line()]
        if m.superseded_by:
            lines.append(f"superseded by {m.superseded_by}")
        if m.metadata:
            lines.append(f"metadata: {m.metadata}")
        return "\n".join(lines)


class MemoryChangeOut(BaseModel):
    """What ``add_memory`` did with one piece of content."""

    event: str
    id: str
    text: str
    merged_into: str | None = None
    superseded: str | None = None


class AddMemoryResult(ToolResult):
    """``add_memory``: one change per memory written."""

    changes: list[MemoryChangeOut]

    def text(self) -> str:
        if not self.changes:
            return "Nothing to remember (no facts found)."
        lines = []
        for c in self.changes:
            if c.event == "MERGE":
                done = f"Already known; merged into {c.id}"
            elif c.event == "SUPERSEDE":
                done = f"Stored {c.id} (replaces {c.superseded})"
            else:
                done = f"Stored {c.id}"
            lines.append(f"{done}: {snippet(c.text, _SNIPPET)}")
        return "\n".join(lines)


class MemoryHit(BaseModel):
    """One memory found by ``search_memory``."""

    id: str
    score: float
    text: str
    observed_at: str | None = None
    session_id: str | None = None
    metadata: dict[str, Any]

    @classmethod
    def of(cls, hit: Hit) -> MemoryHit:
        """The client's view of a memory hit (scope ids and timestamp lifted out)."""
        meta = dict(hit.metadata)
        stamp = meta.pop("timestamp", None)
        session = meta.get("session_id")
        for name in SCOPES:
            meta.pop(name, None)
        return cls(
            id=hit.id,
            score=round(float(hit.score), 4),
            text=hit.text or "",
            observed_at=iso(float(stamp)) if isinstance(stamp, (int, float)) else None,
            session_id=session if isinstance(session, str) else None,
            metadata=meta,
        )


class MemorySearchResult(ToolResult):
    """``search_memory``: the best memories, best first."""

    query: str
    hits: list[MemoryHit]

    def text(self) -> str:
        if not self.hits:
            return f"No memories match {self.query!r}."
        lines = []
        for n, h in enumerate(self.hits, start=1):
            day = f", {h.observed_at[:10]}" if h.observed_at else ""
            lines.append(f"{n}. [{h.score:.2f}] {snippet(h.text, _SNIPPET)} (id {h.id}{day})")
        return _counted(len(self.hits), ("memory", "memories"), self.query, lines)


class MemoryListResult(ToolResult):
    """``list_memories``: memories in the server's scope, oldest first."""

    memories: list[MemoryRecord]

    def text(self) -> str:
        if not self.memories:
            return "No memories."
        return "\n".join(m.line() for m in self.memories)


class MemoryEvent(BaseModel):
    """One change in a memory's history."""

    event: str
    at: str
    text: str | None = None
    metadata: dict[str, Any] | None = None
    detail: dict[str, Any]

    @classmethod
    def of(cls, event: HistoryEvent) -> MemoryEvent:
        """The client's view of a history event."""
        return cls(
            event=event.event,
            at=iso(event.at) or "",
            text=event.text,
            metadata=event.metadata,
            detail=event.detail,
        )


class HistoryResult(ToolResult):
    """``memory_history``: every change to one memory, oldest first."""

    id: str
    events: list[MemoryEvent]

    def text(self) -> str:
        lines = [f"History of {self.id}:"]
        for e in self.events:
            said = f": {snippet(e.text, _SNIPPET)}" if e.text else ""
            extra = f" {e.detail}" if e.detail else ""
            lines.append(f"{e.at} {e.event}{said}{extra}")
        return "\n".join(lines)


class DeleteResult(ToolResult):
    """``delete_memory``: the memory is hidden from search; its history stays."""

    id: str
    status: str

    def text(self) -> str:
        return f"Deleted {self.id} (soft: history kept; purge_memories erases it)."


class PurgeResult(ToolResult):
    """``purge_memories``: how many memories were erased for good."""

    purged: int

    def text(self) -> str:
        noun = "memory" if self.purged == 1 else "memories"
        return f"Purged {self.purged} {noun} (erased with their history)."


class DocumentHit(BaseModel):
    """One chunk found by ``search_documents``."""

    collection: str
    id: str
    doc_id: str | None = None
    source: str | None = None
    start: int | None = None
    end: int | None = None
    score: float
    text: str
    metadata: dict[str, Any]

    @classmethod
    def of(cls, collection: str, hit: Hit) -> DocumentHit:
        """The client's view of a chunk hit."""
        meta = dict(hit.metadata)

        def pop_str(name: str) -> str | None:
            value = meta.pop(name, None)
            return value if isinstance(value, str) else None

        def pop_int(name: str) -> int | None:
            value = meta.pop(name, None)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        return cls(
            collection=collection,
            id=hit.id,
            doc_id=pop_str("doc_id"),
            source=pop_str("source"),
            start=pop_int("start"),
            end=pop_int("end"),
            score=round(float(hit.score), 4),
            text=hit.text or "",
            metadata=meta,
        )


class DocumentSearchResult(ToolResult):
    """``search_documents``: the best chunks, best first."""

    query: str
    hits: list[DocumentHit]

    def text(self) -> str:
        if not self.hits:
            return f"No documents match {self.query!r}."
        lines = []
        for n, h in enumerate(self.hits, start=1):
            where = h.source or h.doc_id or h.id
            span = "" if h.start is None else f" [{h.start}:{h.end}]"
            lines.append(f"[{n}] {h.collection}/{where}{span} score {h.score:.2f}")
            lines.append(" ".join(h.text.split()))
        return _counted(len(self.hits), ("passage", "passages"), self.query, lines)


class AddDocumentResult(ToolResult):
    """``add_document``: what ingesting one document did."""

    collection: str
    id: str
    event: str
    chunks: int

    def text(self) -> str:
        if self.event == "unchanged":
            return f"Document {self.id} in {self.collection} is unchanged."
        return f"Document {self.id} {self.event} in {self.collection} ({self.chunks} chunks)."


class CollectionsResult(ToolResult):
    """``list_collections``: the document collections this server can search."""

    collections: list[str]

    def text(self) -> str:
        if not self.collections:
            return "No document collections yet (add_document creates one)."
        return "Collections: " + ", ".join(self.collections)
