"""Long-term agent memory: scoped, hybrid recall, updates that never destroy data."""

from __future__ import annotations

import asyncio
import builtins
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from ragmem.agents.index import MemoryIndex
from ragmem.agents.recall import RecallWeights
from ragmem.agents.records import HistoryEvent, Ledger, MemoryItem
from ragmem.agents.scope import (
    EXPIRES,
    SCOPES,
    STATUS,
    TIME,
    check_metadata_keys,
    check_scope,
    content_hash,
    public_metadata,
    scope_filter,
    scope_sql,
)
from ragmem.embedders.base import Embedder
from ragmem.errors import InvalidInputError, NotFoundError
from ragmem.filters import And, F, Filter, FilterLike, matches, parse_filter
from ragmem.llms.base import LLM, Message
from ragmem.stores.base import VectorStore
from ragmem.types import Hit, Metadata, validate_metadata

__all__ = ["Memory", "MemoryChange", "MemoryInput"]

_DAY = 86_400.0

Event = Literal["ADD", "MERGE", "SUPERSEDE"]


class MemoryChange(BaseModel):
    """What ``add`` did with one piece of content."""

    event: Event
    item: MemoryItem
    merged_into: str | None = None
    superseded: str | None = None


class MemoryInput(BaseModel):
    """One memory to add with ``add_many``: its text and what is known about it."""

    text: str
    metadata: Metadata = Field(default_factory=dict)
    session_id: str | None = None
    timestamp: float | None = None
    importance: float = 0.5
    key: str | None = None
    ttl_seconds: float | None = None


_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")


def _numbers(text: str) -> builtins.list[str]:
    """The numbers a text states (years, dates, amounts), in order."""
    return _NUMBER.findall(text)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norms if norms > 0 else 0.0


def _default_embedder() -> Embedder:
    from ragmem.embedders.local import LocalEmbedder

    embedder: Embedder = LocalEmbedder()
    return embedder


class Memory:
    """Long-term memory for agents and chatbots, scoped by user, agent and session.

    Every memory and every change to it is kept in a SQLite ledger (``history(id)``
    replays it); the vector store, BM25 and token vectors are indexes derived from the
    ledger. Adding the same fact twice merges it into the existing memory; a fact with
    the same ``key`` as an older one supersedes it (the old one stays in history, hidden
    from default search); ``delete`` is soft. Every search is confined by an index
    filter to the scope asked for.

    Recall blends dense similarity, BM25 and (when the embedder gives token vectors,
    as the bundled local model does) late-interaction MaxSim, then recency and
    importance; each part is in the hit's ``explain``.

    Args:
        path: directory for the ledger and the index; in memory when None.
        embedder: the embedder for memories (default: the bundled local model).
        store: the vector store (default: ``LocalVectorStore``, inside ``path`` if given).
        weights: how recall mixes dense, lexical and late-interaction relevance.
        deduplicate: merge exact and near duplicates (off for raw chat logs).
        near_duplicate: cosine at or above which a new memory merges into an existing one.
        half_life_days: recency half-life.
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
        weights: RecallWeights | None = None,
        deduplicate: bool = True,
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
        if half_life_days <= 0:
            raise InvalidInputError(f"half_life_days must be positive, got {half_life_days}")
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
        self.embedder = embedder if embedder is not None else _default_embedder()
        self.store = store if store is not None else self._default_store()
        self.deduplicate = deduplicate
        self.near_duplicate = near_duplicate
        self.half_life_days = half_life_days
        self.recency_weight = recency_weight
        self.importance_weight = importance_weight
        self.llm = llm
        self.clock = clock
        self._ledger = Ledger(None if self.path is None else self.path / "memory.sqlite")
        self._write_lock = threading.RLock()
        self._index = MemoryIndex(
            self._ledger, self.embedder, self.store, weights or RecallWeights()
        )

    def _default_store(self) -> VectorStore:
        from ragmem.stores.local import LocalVectorStore

        dims = self.embedder.dimensions
        if self.path is None:
            return LocalVectorStore(dimensions=dims)
        return LocalVectorStore(dimensions=dims, path=self.path / "vectors")

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
        texts = self._texts(content, validate_metadata(metadata or {}), infer)
        inputs = [
            MemoryInput(
                text=text,
                metadata=meta,
                session_id=session_id,
                timestamp=timestamp,
                importance=importance,
                key=key,
                ttl_seconds=ttl_seconds,
            )
            for text, meta in texts
        ]
        return self.add_many(inputs, user_id=user_id, agent_id=agent_id)

    def add_many(
        self,
        inputs: Sequence[MemoryInput],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
    ) -> list[MemoryChange]:
        """Add many memories in one batch (one embedding pass), each with its own details."""
        items = [i if isinstance(i, MemoryInput) else MemoryInput.model_validate(i) for i in inputs]
        base = check_scope(user_id, agent_id, None, require=False)
        for item in items:
            check_scope(user_id, agent_id, item.session_id, require=True)
            check_metadata_keys(validate_metadata(item.metadata))
            if not item.text.strip():
                raise InvalidInputError("memory text is empty")
            if not 0.0 <= item.importance <= 1.0:
                raise InvalidInputError(f"importance must be within [0, 1], got {item.importance}")
        if not items:
            return []
        vectors = self.embedder.embed([i.text for i in items])
        now = self.clock()
        with self._write_lock:
            changes = []
            batch: builtins.list[tuple[MemoryItem, np.ndarray]] = []  # added, not yet indexed
            for entry, vector in zip(items, vectors):
                scope = dict(base)
                if entry.session_id is not None:
                    scope["session_id"] = entry.session_id
                change = self._add_one(entry, vector, scope, now, batch)
                if change.event != "MERGE":
                    batch.append((change.item, vector))
                changes.append(change)
            self._index.sync()  # one index pass for the whole batch
        return changes

    def _texts(
        self, content: str | Sequence[Message | Mapping[str, str]], meta: Metadata, infer: bool
    ) -> builtins.list[tuple[str, Metadata]]:
        if isinstance(content, str):
            items = [(content, meta)]
        else:
            messages = [m if isinstance(m, Message) else Message.model_validate(m) for m in content]
            items = [(m.content, {**meta, "role": m.role}) for m in messages if m.role != "system"]
        if infer:
            if self.llm is None:
                raise InvalidInputError("infer=True needs Memory(llm=...)")
            items = [(fact, meta) for fact in self._extract_facts([t for t, _ in items])]
        return items

    def _extract_facts(self, texts: builtins.list[str]) -> builtins.list[str]:
        assert self.llm is not None
        prompt = (
            "Extract the durable facts about the user from the conversation below. "
            'Answer with a JSON list of short, self-contained sentences, e.g. ["Ana lives in '
            'Lisbon"]. Answer [] if there are none.\n\n' + "\n".join(texts)
        )
        reply = self.llm.complete([Message(role="user", content=prompt)])
        start, end = reply.find("["), reply.rfind("]")
        try:
            facts = json.loads(reply[start : end + 1]) if 0 <= start < end else None
        except json.JSONDecodeError:
            facts = None
        if not isinstance(facts, list) or not all(isinstance(f, str) for f in facts):
            raise InvalidInputError(f"the LLM did not answer with a JSON list of facts: {reply!r}")
        return [f for f in facts if f.strip()]

    def _add_one(
        self,
        entry: MemoryInput,
        vector: np.ndarray,
        scope: dict[str, str],
        now: float,
        batch: Sequence[tuple[MemoryItem, np.ndarray]],
    ) -> MemoryChange:
        digest = content_hash(entry.text)
        if self.deduplicate:
            duplicate = self._find_duplicate(entry.text, digest, vector, scope, batch)
            if duplicate is not None:
                return self._merge(duplicate, entry, now)
        item = MemoryItem(
            id=uuid.uuid4().hex,
            text=entry.text,
            hash=digest,
            key=entry.key,
            metadata=entry.metadata,
            importance=entry.importance,
            timestamp=now if entry.timestamp is None else float(entry.timestamp),
            created_at=now,
            updated_at=now,
            expires_at=None if entry.ttl_seconds is None else now + entry.ttl_seconds,
            **scope,
        )
        previous = self._same_key(entry.key, scope) if entry.key is not None else []
        with self._ledger.transaction() as db:
            self._ledger.insert(db, item)
            self._ledger.record(db, item.id, "ADD", text=item.text, metadata=item.metadata)
            for old in previous:
                self._ledger.update(db, old.id, status="superseded", superseded_by=item.id)
                self._ledger.record(
                    db, old.id, "SUPERSEDE", detail={"by": item.id, "key": item.key}
                )
        self._index.fresh[item.id] = vector
        if previous:
            return MemoryChange(event="SUPERSEDE", item=item, superseded=previous[0].id)
        return MemoryChange(event="ADD", item=item)

    def _find_duplicate(
        self,
        text: str,
        digest: str,
        vector: np.ndarray,
        scope: dict[str, str],
        batch: Sequence[tuple[MemoryItem, np.ndarray]],
    ) -> MemoryItem | None:
        """An active memory in exactly this scope that ``text`` repeats, if any.

        Exact repeats (same text up to case and spacing) always merge. A near repeat
        merges when its cosine reaches ``near_duplicate`` *and* it states the same
        numbers: "moved to Nairobi in 2020" and "... in 2024" embed almost alike but
        are two facts, and merging would hide one of them from search.
        """
        clause, params = scope_sql(scope, exact=True)
        exact = self._ledger.select(
            f"hash = ? AND status = 'active' AND {clause}", [digest, *params]
        )
        if exact:
            return exact[0]
        candidates: builtins.list[tuple[float, MemoryItem]] = []
        hits = self.store.search(vector, k=1, where=scope_filter(scope, exact=True))[0]
        if hits:
            found = self._ledger.find([hits[0].id]).get(hits[0].id)
            if found is not None and found.status == "active":
                candidates.append((hits[0].score, found))
        # memories added earlier in this batch are not in the store yet
        for item, other in batch:
            if all(getattr(item, name) == scope.get(name) for name in SCOPES):
                candidates.append((_cosine(vector, other), item))
        for score, item in sorted(candidates, key=lambda c: -c[0]):
            if score < self.near_duplicate:
                break
            if _numbers(item.text) == _numbers(text):
                return item
        return None

    def _merge(self, item: MemoryItem, entry: MemoryInput, now: float) -> MemoryChange:
        merged_meta = {**entry.metadata, **item.metadata}  # the existing memory's values win
        with self._ledger.transaction() as db:
            self._ledger.update(
                db, item.id, mentions=item.mentions + 1, updated_at=now, metadata=merged_meta
            )
            self._ledger.record(db, item.id, "MERGE", text=entry.text, metadata=entry.metadata)
        (merged,) = self._ledger.get([item.id])
        return MemoryChange(event="MERGE", item=merged, merged_into=item.id)

    def _same_key(self, key: str, scope: dict[str, str]) -> builtins.list[MemoryItem]:
        clause, params = scope_sql(scope, exact=True)
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
        with self._write_lock:
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
                check_metadata_keys(meta)
                fields["metadata"] = meta
            if importance is not None:
                if not 0.0 <= importance <= 1.0:
                    raise InvalidInputError(f"importance must be within [0, 1], got {importance}")
                fields["importance"] = importance
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
            self._index.sync()
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
            self._index.sync()

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
        """Soft-delete memories in a scope: those matching ``where`` (and, if also given,
        older than ``older_than`` seconds), or older than ``older_than`` alone, plus any
        whose TTL has passed when ``expired``. Returns how many were forgotten."""
        scope = check_scope(user_id, agent_id, session_id, require=False)
        tree = parse_filter(where)
        if tree is None and older_than is None and not expired:
            raise InvalidInputError("forget needs where=, older_than= or expired=True")
        now = self.clock()
        clause, params = scope_sql(scope)
        with self._write_lock:
            victims = []
            for item in self._ledger.select(f"status != 'deleted' AND {clause}", params):
                too_old = older_than is not None and item.timestamp < now - older_than
                selected = tree is not None and matches(tree, item.metadata)
                chosen = (
                    (selected and too_old)
                    if (tree is not None and older_than)
                    else (selected or too_old)
                )
                expired_now = expired and item.expires_at is not None and item.expires_at <= now
                if chosen or expired_now:
                    victims.append(item)
            with self._ledger.transaction() as db:
                for item in victims:
                    self._ledger.update(db, item.id, status="deleted", updated_at=now)
                    self._ledger.record(db, item.id, "FORGET", detail={"ttl": item.expires_at})
            self._index.sync()
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
    ) -> builtins.list[Hit]:
        """The ``k`` memories in scope most relevant to ``query``, best first.

        The score blends relevance (dense, BM25, late interaction) with recency and
        importance (weights from the constructor); ``explain`` shows each part.
        """
        scope = check_scope(user_id, agent_id, session_id, require=True)
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query must be a non-empty string")
        if not isinstance(k, int) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        now = self.clock()
        conditions: builtins.list[Filter] = [scope_filter(scope, exact=False)]
        user_filter = parse_filter(where)
        if user_filter is not None:
            conditions.append(user_filter)
        if since is not None:
            conditions.append(F(TIME) >= since)
        if until is not None:
            conditions.append(F(TIME) <= until)
        if not include_superseded:
            conditions.append(F(STATUS) == "active")
        conditions.append(~F(EXPIRES).exists() | (F(EXPIRES) > now))
        boosted = self.recency_weight > 0 or self.importance_weight > 0
        hits = self._index.search(
            query, max(4 * k, 50) if boosted else k, And(filters=tuple(conditions))
        )
        return self._rank(hits, now)[:k]

    async def search_async(self, query: str, **options: Any) -> builtins.list[Hit]:
        """Async twin of ``search`` (runs in a worker thread)."""
        return await asyncio.to_thread(lambda: self.search(query, **options))

    async def add_async(
        self, content: str | Sequence[Message | Mapping[str, str]], **options: Any
    ) -> builtins.list[MemoryChange]:
        """Async twin of ``add`` (runs in a worker thread)."""
        return await asyncio.to_thread(lambda: self.add(content, **options))

    def _rank(self, hits: builtins.list[Hit], now: float) -> builtins.list[Hit]:
        relevance_weight = 1.0 - self.recency_weight - self.importance_weight
        items = self._ledger.find([h.id for h in hits])
        ranked = []
        for hit in hits:
            item = items.get(hit.id)
            if item is None:  # deleted while this search ran
                continue
            age_days = max(0.0, now - item.timestamp) / _DAY
            recency = math.pow(0.5, age_days / self.half_life_days)
            score = (
                relevance_weight * hit.score
                + self.recency_weight * recency
                + self.importance_weight * item.importance
            )
            explain = {
                **hit.explain,
                "relevance": hit.score,
                "recency": recency,
                "importance": item.importance,
            }
            ranked.append(
                Hit(
                    id=item.id,
                    score=score,
                    text=item.text,
                    metadata=public_metadata(item),
                    explain=explain,
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
    ) -> builtins.list[MemoryItem]:
        """Memories in a scope, oldest first; ``status=None`` lists every status."""
        scope = check_scope(user_id, agent_id, session_id, require=False)
        clause, params = scope_sql(scope)
        if status is not None:
            clause += " AND status = ?"
            params.append(status)
        clause += " ORDER BY timestamp, rowid"
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
        lines = [item.model_dump_json() + "\n" for item in self.list(status=None)]
        if isinstance(target, (str, Path)):
            Path(target).write_text("".join(lines), encoding="utf-8")
        else:
            target.writelines(lines)
        return len(lines)

    def import_(self, source: str | Path | Iterable[str]) -> int:
        """Load memories written by ``export``; returns how many were new.

        Ids that already exist are left untouched, so importing twice is harmless.
        """
        if isinstance(source, (str, Path)):
            lines: Iterable[str] = Path(source).read_text("utf-8").splitlines()
        else:
            lines = source
        items = [MemoryItem.model_validate_json(line) for line in lines if line.strip()]
        with self._write_lock:
            existing = self._ledger.find([i.id for i in items])
            new = [i for i in items if i.id not in existing]
            with self._ledger.transaction() as db:
                for item in new:
                    self._ledger.insert(db, item)
                    self._ledger.record(
                        db, item.id, "IMPORT", text=item.text, metadata=item.metadata
                    )
            self._index.sync()
        return len(new)

    def close(self) -> None:
        """Close the ledger and the store."""
        self._ledger.close()
        self.store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
