"""Long-term agent memory: scoped, hybrid recall, updates that never destroy data."""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import json
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
from pydantic import BaseModel

from ragmem.agents.records import HistoryEvent, Ledger, MemoryItem
from ragmem.embedders.base import Embedder
from ragmem.errors import InvalidInputError, NotFoundError
from ragmem.filters import And, F, Filter, FilterLike, matches, parse_filter
from ragmem.llms.base import LLM, Message
from ragmem.stores.base import VectorStore
from ragmem.types import Hit, Metadata, validate_metadata

__all__ = ["Memory", "MemoryChange"]

SCOPES = ("user_id", "agent_id", "session_id")
# Keys ragmem keeps in the index next to the user's metadata.
_STATUS, _TIME, _EXPIRES, _KEY = "_status", "_time", "_expires", "_key"
_RESERVED = frozenset({*SCOPES, _STATUS, _TIME, _EXPIRES, _KEY})
_DAY = 86_400.0

Event = Literal["ADD", "MERGE", "SUPERSEDE", "UPDATE"]


class MemoryChange(BaseModel):
    """What ``add`` did with one piece of content."""

    event: Event
    item: MemoryItem
    merged_into: str | None = None
    superseded: str | None = None


def content_hash(text: str) -> str:
    """Hash of a memory's text after whitespace and case folding (exact-duplicate test)."""
    return hashlib.sha256(" ".join(text.split()).casefold().encode()).hexdigest()


def _default_embedder() -> Embedder:
    try:
        from ragmem.embedders.local import LocalEmbedder
    except ImportError:  # the [local] extra is missing: say so rather than fall back silently
        raise
    embedder: Embedder = LocalEmbedder()
    return embedder


class Memory:
    """Long-term memory for agents and chatbots, scoped by user, agent and session.

    Every memory and every change to it is kept in a SQLite ledger (``history(id)``
    replays it); the vector store is an index derived from the ledger. Adding the same
    fact twice merges it into the existing memory; a fact with the same ``key`` as an
    older one supersedes it (the old one stays in history, hidden from default search);
    ``delete`` is soft. Every search is confined by a store filter to the scope asked.

    Args:
        path: directory for the ledger and the index; in memory when None.
        embedder: the embedder for memories (default: the bundled local model).
        store: the vector store (default: ``LocalVectorStore`` inside ``path``).
        near_duplicate: cosine at or above which a new memory merges into an existing one.
        half_life_days: recency half-life for the recency part of the score.
        recency_weight: weight of recency in the final score (0 disables it).
        importance_weight: weight of importance in the final score.
        llm: optional chat model for fact extraction (``add(..., infer=True)``).
        clock: returns the current time as Unix seconds (tests pass a fake clock).

    Example:
        >>> from ragmem import HashingEmbedder
        >>> memory = Memory(embedder=HashingEmbedder(64))
        >>> _ = memory.add("I live in Lisbon", user_id="ana")
        >>> memory.search("where does she live", user_id="ana", k=1)[0].text
        'I live in Lisbon'
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        embedder: Embedder | None = None,
        store: VectorStore | None = None,
        near_duplicate: float = 0.95,
        half_life_days: float = 30.0,
        recency_weight: float = 0.0,
        importance_weight: float = 0.0,
        llm: LLM | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0.0 < near_duplicate <= 1.0:
            raise InvalidInputError(f"near_duplicate must be in (0, 1], got {near_duplicate}")
        if recency_weight < 0 or importance_weight < 0 or recency_weight + importance_weight >= 1:
            raise InvalidInputError("recency_weight and importance_weight must be >= 0, sum < 1")
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
        self.embedder = embedder if embedder is not None else _default_embedder()
        self.store = store if store is not None else self._default_store()
        self.near_duplicate = near_duplicate
        self.half_life_days = half_life_days
        self.recency_weight = recency_weight
        self.importance_weight = importance_weight
        self.llm = llm
        self.clock = clock
        self._ledger = Ledger(None if self.path is None else self.path / "memory.sqlite")
        self._write_lock = threading.RLock()
        self._fresh: dict[str, np.ndarray] = {}  # vectors embedded by the current write
        self._sync()  # replay index changes a crash left queued

    def _default_store(self) -> VectorStore:
        from ragmem.stores.local import LocalVectorStore

        if self.path is None:
            return LocalVectorStore(dimensions=self.embedder.dimensions)
        return LocalVectorStore(dimensions=self.embedder.dimensions, path=self.path / "vectors")  # type: ignore[call-arg]

    # -- adding -------------------------------------------------------------------------------

    def add(
        self,
        content: str | Sequence[Message | Mapping[str, str]],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        metadata: Metadata | None = None,
        timestamp: float | None = None,
        importance: float = 0.5,
        key: str | None = None,
        ttl_seconds: float | None = None,
        infer: bool = False,
    ) -> list[MemoryChange]:
        """Remember ``content``: a text, or chat messages (one memory per message).

        With ``infer=True`` and an ``llm``, the LLM extracts facts from the content and
        each fact becomes a memory. ``key`` names what the memory is about (e.g.
        ``"home_city"``): a new memory with the same key in the same scope supersedes
        the old one instead of contradicting it.

        Returns:
            One change per piece of content: ADD, MERGE (into an existing duplicate)
            or SUPERSEDE (an older memory with the same key).
        """
        scope = self._scope(user_id, agent_id, session_id, require=True)
        base_meta = validate_metadata(metadata or {})
        clash = _RESERVED & base_meta.keys()
        if clash:
            raise InvalidInputError(f"metadata keys {sorted(clash)} are reserved by Memory")
        if not 0.0 <= importance <= 1.0:
            raise InvalidInputError(f"importance must be within [0, 1], got {importance}")
        texts = self._texts(content, base_meta, infer)
        now = self.clock()
        when = now if timestamp is None else float(timestamp)
        expires = None if ttl_seconds is None else now + ttl_seconds
        if not texts:
            return []
        vectors = self.embedder.embed([t for t, _ in texts])
        changes = []
        with self._write_lock:
            for (text, meta), vector in zip(texts, vectors):
                changes.append(
                    self._add_one(text, vector, scope, meta, when, now, importance, key, expires)
                )
            self._sync()
        return changes

    def _texts(
        self, content: str | Sequence[Message | Mapping[str, str]], meta: Metadata, infer: bool
    ) -> list[tuple[str, Metadata]]:
        if isinstance(content, str):
            items = [(content, meta)]
        else:
            messages = [m if isinstance(m, Message) else Message.model_validate(m) for m in content]
            items = [(m.content, {**meta, "role": m.role}) for m in messages if m.role != "system"]
        if infer:
            if self.llm is None:
                raise InvalidInputError("infer=True needs Memory(llm=...)")
            items = [(fact, meta) for fact in self._extract_facts([t for t, _ in items])]
        for text, _ in items:
            if not text.strip():
                raise InvalidInputError("memory text is empty")
        return items

    def _extract_facts(self, texts: list[str]) -> list[str]:
        assert self.llm is not None
        prompt = (
            "Extract the durable facts about the user from the conversation below. "
            'Answer with a JSON list of short, self-contained sentences, e.g. ["Ana lives in '
            'Lisbon"]. Answer [] if there are none.\n\n' + "\n".join(texts)
        )
        reply = self.llm.complete([Message(role="user", content=prompt)])
        start, end = reply.find("["), reply.rfind("]")
        try:
            facts = json.loads(reply[start : end + 1]) if start >= 0 < end else None
        except json.JSONDecodeError:
            facts = None
        if not isinstance(facts, list) or not all(isinstance(f, str) for f in facts):
            raise InvalidInputError(f"the LLM did not answer with a JSON list of facts: {reply!r}")
        return [f for f in facts if f.strip()]

    def _add_one(
        self,
        text: str,
        vector: np.ndarray,
        scope: dict[str, str],
        meta: Metadata,
        when: float,
        now: float,
        importance: float,
        key: str | None,
        expires: float | None,
    ) -> MemoryChange:
        digest = content_hash(text)
        duplicate = self._find_duplicate(digest, vector, scope)
        if duplicate is not None:
            return self._merge(duplicate, text, meta, now)
        item = MemoryItem(
            id=uuid.uuid4().hex,
            text=text,
            hash=digest,
            key=key,
            metadata=meta,
            importance=importance,
            timestamp=when,
            created_at=now,
            updated_at=now,
            expires_at=expires,
            **scope,
        )
        previous = self._same_key(key, scope) if key is not None else []
        with self._ledger.transaction() as db:
            self._ledger.insert(db, item)
            self._ledger.record(db, item.id, "ADD", text=text, metadata=meta)
            for old in previous:
                self._ledger.update(db, old.id, status="superseded", superseded_by=item.id)
                self._ledger.record(db, old.id, "SUPERSEDE", detail={"by": item.id, "key": key})
        self._fresh[item.id] = vector
        if previous:
            return MemoryChange(event="SUPERSEDE", item=item, superseded=previous[0].id)
        return MemoryChange(event="ADD", item=item)

    def _find_duplicate(
        self, digest: str, vector: np.ndarray, scope: dict[str, str]
    ) -> MemoryItem | None:
        clause, params = self._scope_sql(scope, exact=True)
        exact = self._ledger.select(
            f"hash = ? AND status = 'active' AND {clause}", [digest, *params]
        )
        if exact:
            return exact[0]
        hits = self.store.search(vector, k=1, where=self._scope_filter(scope, exact=True))[0]
        if hits and hits[0].score >= self.near_duplicate:
            found = self._ledger.find([hits[0].id])
            return found.get(hits[0].id)
        return None

    def _merge(self, item: MemoryItem, text: str, meta: Metadata, now: float) -> MemoryChange:
        merged_meta = {**meta, **item.metadata}  # the existing memory's values win
        with self._ledger.transaction() as db:
            self._ledger.update(
                db, item.id, mentions=item.mentions + 1, updated_at=now, metadata=merged_meta
            )
            self._ledger.record(db, item.id, "MERGE", text=text, metadata=meta)
        (merged,) = self._ledger.get([item.id])
        return MemoryChange(event="MERGE", item=merged, merged_into=item.id)

    def _same_key(self, key: str, scope: dict[str, str]) -> list[MemoryItem]:
        clause, params = self._scope_sql(scope, exact=True)
        return self._ledger.select(f"key = ? AND status = 'active' AND {clause}", [key, *params])

    # -- changing and removing ----------------------------------------------------------------

    def update(
        self,
        memory_id: str,
        text: str | None = None,
        *,
        metadata: Metadata | None = None,
        importance: float | None = None,
    ) -> MemoryItem:
        """Change a memory in place; the previous version stays in its history."""
        (item,) = self._ledger.get([memory_id])
        if item.status == "deleted":
            raise NotFoundError([memory_id], what="memory ids (deleted)")
        fields: dict[str, Any] = {"updated_at": self.clock()}
        if text is not None:
            if not text.strip():
                raise InvalidInputError("memory text is empty")
            fields.update(text=text, hash=content_hash(text))
        if metadata is not None:
            meta = validate_metadata(metadata)
            if _RESERVED & meta.keys():
                raise InvalidInputError(
                    f"metadata keys {sorted(_RESERVED & meta.keys())} are reserved"
                )
            fields["metadata"] = meta
        if importance is not None:
            fields["importance"] = importance
        with self._write_lock:
            with self._ledger.transaction() as db:
                self._ledger.record(
                    db,
                    memory_id,
                    "UPDATE",
                    text=item.text,
                    metadata=item.metadata,
                    detail={"previous_importance": item.importance},
                )
                self._ledger.update(db, memory_id, **fields)
            self._sync()
        return self._ledger.get([memory_id])[0]

    def delete(self, memory_id: str) -> None:
        """Remove a memory from search; it stays in ``history`` and ``list(status=...)``."""
        with self._write_lock:
            (item,) = self._ledger.get([memory_id])
            if item.status == "deleted":
                return
            with self._ledger.transaction() as db:
                self._ledger.update(db, memory_id, status="deleted", updated_at=self.clock())
                self._ledger.record(db, memory_id, "DELETE")
            self._sync()

    def forget(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        where: FilterLike | None = None,
        older_than: float | None = None,
        expired: bool = True,
    ) -> int:
        """Soft-delete memories in a scope that match ``where`` and/or are older than
        ``older_than`` seconds (by their timestamp), plus any whose TTL has passed.

        Returns the number forgotten.
        """
        scope = self._scope(user_id, agent_id, session_id, require=False)
        tree = parse_filter(where)
        if tree is None and older_than is None and not expired:
            raise InvalidInputError("forget needs where=, older_than= or expired=True")
        now = self.clock()
        clause, params = self._scope_sql(scope)
        victims = []
        for item in self._ledger.select(f"status != 'deleted' AND {clause}", params):
            too_old = older_than is not None and item.timestamp < now - older_than
            ttl_over = expired and item.expires_at is not None and item.expires_at <= now
            selected = tree is not None and matches(tree, item.metadata)
            if tree is not None and older_than is not None:
                chosen = selected and too_old
            else:
                chosen = selected or too_old
            if chosen or ttl_over:
                victims.append(item)
        with self._write_lock:
            with self._ledger.transaction() as db:
                for item in victims:
                    self._ledger.update(db, item.id, status="deleted", updated_at=now)
                    self._ledger.record(db, item.id, "FORGET", detail={"ttl": item.expires_at})
            self._sync()
        return len(victims)

    # -- reading ------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        k: int = 5,
        where: FilterLike | None = None,
        since: float | None = None,
        until: float | None = None,
        include_superseded: bool = False,
    ) -> list[Hit]:
        """The ``k`` memories in scope most relevant to ``query``, best first.

        The score blends relevance with recency and importance (weights from the
        constructor); ``explain`` shows each part.
        """
        scope = self._scope(user_id, agent_id, session_id, require=True)
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query must be a non-empty string")
        conditions: list[Filter] = [self._scope_filter(scope, exact=False)]
        user_filter = parse_filter(where)
        if user_filter is not None:
            conditions.append(user_filter)
        if since is not None:
            conditions.append(F(_TIME) >= since)
        if until is not None:
            conditions.append(F(_TIME) <= until)
        if not include_superseded:
            conditions.append(F(_STATUS) == "active")
        now = self.clock()
        conditions.append(~F(_EXPIRES).exists() | (F(_EXPIRES) > now))
        tree = And(filters=tuple(conditions))
        depth = k if self.recency_weight == self.importance_weight == 0 else max(4 * k, 50)
        vector = self.embedder.embed_query(query)
        hits = self.store.search(vector, k=depth, where=tree)[0]
        return self._rank(hits, now)[:k]

    async def search_async(self, query: str, **options: Any) -> list[Hit]:
        """Async twin of ``search`` (runs in a worker thread)."""
        return await asyncio.to_thread(lambda: self.search(query, **options))

    async def add_async(
        self, content: str | Sequence[Message | Mapping[str, str]], **options: Any
    ) -> list[MemoryChange]:
        """Async twin of ``add`` (runs in a worker thread)."""
        return await asyncio.to_thread(lambda: self.add(content, **options))

    def _rank(self, hits: list[Hit], now: float) -> list[Hit]:
        relevance_weight = 1.0 - self.recency_weight - self.importance_weight
        items = self._ledger.find([h.id for h in hits])
        ranked = []
        for hit in hits:
            item = items.get(hit.id)
            if item is None:  # the index is ahead of a concurrent delete: skip it
                continue
            age_days = max(0.0, now - item.timestamp) / _DAY
            recency = math.pow(0.5, age_days / self.half_life_days)
            score = (
                relevance_weight * hit.score
                + self.recency_weight * recency
                + self.importance_weight * item.importance
            )
            ranked.append(
                Hit(
                    id=item.id,
                    score=score,
                    text=item.text,
                    metadata=self._public_metadata(item),
                    explain={
                        **hit.explain,
                        "relevance": hit.score,
                        "recency": recency,
                        "importance": item.importance,
                        "weights": {
                            "relevance": relevance_weight,
                            "recency": self.recency_weight,
                            "importance": self.importance_weight,
                        },
                    },
                )
            )
        ranked.sort(key=lambda h: -h.score)
        return ranked

    def get(self, memory_id: str) -> MemoryItem:
        """One memory by id (any status)."""
        return self._ledger.get([memory_id])[0]

    def list(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        status: str | None = "active",
        limit: int | None = None,
    ) -> list[MemoryItem]:
        """Memories in a scope, oldest first; ``status=None`` lists every status."""
        scope = self._scope(user_id, agent_id, session_id, require=False)
        clause, params = self._scope_sql(scope)
        if status is not None:
            clause += " AND status = ?"
            params.append(status)
        clause += " ORDER BY timestamp, created_at, id"
        if limit is not None:
            clause += f" LIMIT {int(limit)}"
        return self._ledger.select(clause, params)

    def history(self, memory_id: str) -> builtins.list[HistoryEvent]:
        """Every change to a memory, oldest first (NotFoundError for unknown ids)."""
        self._ledger.get([memory_id])
        return self._ledger.history(memory_id)

    # -- export and import --------------------------------------------------------------------

    def export(self, target: str | Path | IO[str]) -> int:
        """Write every memory (all statuses) as JSON lines; returns how many."""
        items = self.list(status=None)
        lines = [item.model_dump_json() + "\n" for item in items]
        if isinstance(target, (str, Path)):
            Path(target).write_text("".join(lines), encoding="utf-8")
        else:
            target.writelines(lines)
        return len(lines)

    def import_(self, source: str | Path | Iterable[str]) -> int:
        """Load memories written by ``export``; returns how many were new.

        Ids that already exist are left untouched, so importing twice is harmless.
        """
        lines = (
            Path(source).read_text("utf-8").splitlines()
            if isinstance(source, (str, Path))
            else source
        )
        items = [MemoryItem.model_validate_json(line) for line in lines if line.strip()]
        existing = self._ledger.find([i.id for i in items])
        new = [i for i in items if i.id not in existing]
        with self._write_lock:
            with self._ledger.transaction() as db:
                for item in new:
                    self._ledger.insert(db, item)
                    self._ledger.record(
                        db, item.id, "IMPORT", text=item.text, metadata=item.metadata
                    )
            self._sync()
        return len(new)

    def close(self) -> None:
        """Close the ledger and the store."""
        self._ledger.close()
        self.store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- index maintenance --------------------------------------------------------------------

    def _sync(self) -> None:
        """Apply queued ledger changes to the vector store (idempotent; replays after a crash)."""
        with self._write_lock:
            pending = self._ledger.pending()
            if not pending:
                return
            ids = list(dict.fromkeys(mid for _, mid in pending))
            items = self._ledger.find(ids)
            gone = [i for i in ids if i not in items or items[i].status == "deleted"]
            live = [items[i] for i in ids if i in items and items[i].status != "deleted"]
            if gone:
                self.store.delete(gone)
            if live:
                vectors = self._vectors_for(live)
                self.store.upsert(
                    [i.id for i in live],
                    vectors,
                    texts=[i.text for i in live],
                    metadata=[self._index_metadata(i) for i in live],
                )
            self._ledger.done([seq for seq, _ in pending])
            self._fresh.clear()

    def _vectors_for(self, items: builtins.list[MemoryItem]) -> np.ndarray:
        out = np.empty((len(items), self.embedder.dimensions), np.float32)
        todo = []
        stored = {}
        unknown = [i.id for i in items if i.id not in self._fresh]
        if unknown:
            try:
                stored = {r.id: r for r in self.store.get(unknown)}
            except NotFoundError:
                stored = {}
        for row, item in enumerate(items):
            record = stored.get(item.id)
            if item.id in self._fresh:
                out[row] = self._fresh[item.id]
            elif record is not None and record.text == item.text:
                out[row] = record.vector
            else:
                todo.append(row)
        if todo:
            out[todo] = self.embedder.embed([items[r].text for r in todo])
        return out

    @staticmethod
    def _index_metadata(item: MemoryItem) -> Metadata:
        meta: Metadata = {**item.metadata, _STATUS: item.status, _TIME: item.timestamp}
        for name in SCOPES:
            value = getattr(item, name)
            if value is not None:
                meta[name] = value
        if item.expires_at is not None:
            meta[_EXPIRES] = item.expires_at
        if item.key is not None:
            meta[_KEY] = item.key
        return meta

    @staticmethod
    def _public_metadata(item: MemoryItem) -> Metadata:
        meta: Metadata = dict(item.metadata)
        for name in SCOPES:
            value = getattr(item, name)
            if value is not None:
                meta[name] = value
        meta["timestamp"] = item.timestamp
        return meta

    # -- scopes -------------------------------------------------------------------------------

    @staticmethod
    def _scope(
        user_id: str | None, agent_id: str | None, session_id: str | None, *, require: bool
    ) -> dict[str, str]:
        scope = {
            name: value
            for name, value in zip(SCOPES, (user_id, agent_id, session_id))
            if value is not None
        }
        for name, value in scope.items():
            if not isinstance(value, str) or not value:
                raise InvalidInputError(f"{name} must be a non-empty string, got {value!r}")
        if require and not scope:
            raise InvalidInputError("give at least one of user_id, agent_id or session_id")
        return scope

    @staticmethod
    def _scope_filter(scope: dict[str, str], *, exact: bool) -> Filter:
        """Store filter for a scope; ``exact`` also requires the unnamed scopes to be absent."""
        parts: builtins.list[Filter] = [F(name) == value for name, value in scope.items()]
        if exact:
            parts += [~F(name).exists() for name in SCOPES if name not in scope]
            parts.append(F(_STATUS) == "active")
        return parts[0] if len(parts) == 1 else And(filters=tuple(parts))

    @staticmethod
    def _scope_sql(scope: dict[str, str], *, exact: bool = False) -> tuple[str, builtins.list[Any]]:
        """SQL for a scope; ``exact`` also requires the unnamed scopes to be absent."""
        parts = [f"{name} = ?" for name in scope]
        if exact:
            parts += [f"{name} IS NULL" for name in SCOPES if name not in scope]
        return (" AND ".join(parts) or "1 = 1"), list(scope.values())
