"""Long-term agent memory: scoped, hybrid recall, updates that never destroy data."""

from __future__ import annotations

import asyncio
import builtins
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ragmem.agents.adding import Batch, Deduplication
from ragmem.agents.checks import (
    check_k,
    check_metadata_values,
    check_text,
    check_time,
    check_timestamp,
    check_ttl,
    finite_number,
)
from ragmem.agents.identity import KEY as EMBEDDER_KEY
from ragmem.agents.identity import open_embedder
from ragmem.agents.index import MemoryIndex
from ragmem.agents.inference import InferredUpdates
from ragmem.agents.lifecycle import Lifecycle
from ragmem.agents.recall import RecallWeights
from ragmem.agents.records import HistoryEvent, Ledger, MemoryChange, MemoryInput, MemoryItem
from ragmem.agents.scope import (
    EXPIRES,
    STATUS,
    TIME,
    VALID_TO,
    check_metadata_keys,
    check_scope,
    content_hash,
    public_metadata,
    scope_filter,
    scope_sql,
)
from ragmem.agents.supersession import SAME_SUBJECT, mark_superseded
from ragmem.embedders.base import Embedder
from ragmem.errors import CorruptIndexError, InvalidInputError, NotFoundError
from ragmem.filters import And, F, Filter, FilterLike, parse_filter
from ragmem.llms.base import LLM, Message
from ragmem.stores.base import VectorStore
from ragmem.types import Hit, Metadata, validate_metadata

__all__ = ["Memory", "MemoryChange", "MemoryInput"]

_DAY = 86_400.0


def _input(data: object) -> MemoryInput:
    try:
        return MemoryInput.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(f"invalid memory: {exc}") from None


class Memory(Deduplication, Lifecycle, InferredUpdates):
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
        same_subject: cosine at which a newer memory of the same scope counts as
            probably superseding an older one in search results (None disables it; see
            ``ragmem.agents.supersession``).

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
        same_subject: float | None = SAME_SUBJECT,
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
        self.deduplicate = deduplicate
        self.near_duplicate = near_duplicate
        self.half_life_days = half_life_days
        self.recency_weight = recency_weight
        self.importance_weight = importance_weight
        self.llm = llm
        self.clock = clock
        self.same_subject = same_subject
        self._write_lock = threading.RLock()
        self._ledger = Ledger(None if self.path is None else self.path / "memory.sqlite")
        own_store = store is None
        opened: VectorStore | None = store
        try:
            self.embedder, entry = open_embedder(self._ledger, embedder, self.path)
            self.store = opened = store if store is not None else self._default_store()
            if own_store and self.path is not None and self._ledger.is_empty():
                held = self.store.count()
                if held:
                    raise CorruptIndexError(
                        self.path / "memory.sqlite",
                        f"the ledger is missing or empty but {self.path / 'vectors'} holds "
                        f"{held} memories; restore memory.sqlite from a backup, or move the "
                        "directory away to start an empty memory",
                    )
            if entry is not None:
                self._ledger.set_meta(EMBEDDER_KEY, entry)
            self._index = MemoryIndex(
                self._ledger, self.embedder, self.store, weights or RecallWeights()
            )
        except BaseException:
            # release what this constructor acquired (the store's write lock above all)
            if own_store and opened is not None:
                opened.close()
            self._ledger.close()
            raise

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
            or SUPERSEDE (an older memory with the same key); with ``infer=True`` one
            per fact, which may also be UPDATE, DELETE or NONE (the LLM's decision).
        """
        if not isinstance(content, str) and not (
            isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray))
        ):
            raise InvalidInputError(
                f"content must be a text or a list of chat messages, got {type(content).__name__}"
            )
        if infer and self.llm is None:
            raise InvalidInputError("infer=True needs Memory(llm=...)")
        texts = self._texts(content, validate_metadata(metadata or {}))
        details = {
            "session_id": session_id,
            "timestamp": None if timestamp is None else check_timestamp(timestamp),
            "importance": finite_number(importance, "importance"),
            "key": key,
            "ttl_seconds": None if ttl_seconds is None else check_ttl(ttl_seconds),
        }
        inputs = [_input({"text": text, "metadata": meta, **details}) for text, meta in texts]
        if infer:
            return self._add_inferred(inputs, user_id=user_id, agent_id=agent_id)
        return self.add_many(inputs, user_id=user_id, agent_id=agent_id)

    def add_many(
        self,
        inputs: Sequence[MemoryInput],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
    ) -> list[MemoryChange]:
        """Add many memories in one batch (one embedding pass), each with its own details."""
        items = [i if isinstance(i, MemoryInput) else _input(i) for i in inputs]
        base = check_scope(user_id, agent_id, None, require=False)
        for item in items:
            check_scope(user_id, agent_id, item.session_id, require=True)
            check_metadata_keys(validate_metadata(item.metadata))
            check_metadata_values(item.metadata)
            if not check_text(item.text, "memory text").strip():
                raise InvalidInputError("memory text is empty")
            if not 0.0 <= item.importance <= 1.0:
                raise InvalidInputError(f"importance must be within [0, 1], got {item.importance}")
            if item.key is not None:
                check_text(item.key, "key")
            if item.timestamp is not None:
                check_timestamp(item.timestamp)
            if item.ttl_seconds is not None:
                check_ttl(item.ttl_seconds)
        if not items:
            return []
        vectors, tokens = self._index.embed([i.text for i in items])
        now = self.clock()
        scopes = [
            {**base, "session_id": i.session_id} if i.session_id is not None else dict(base)
            for i in items
        ]
        with self._write_lock:
            changes = []
            batch = Batch()  # added, not yet indexed
            nearest = self.nearest_stored(vectors, scopes)
            try:
                with self._ledger.transaction():  # the batch lands whole, with one commit
                    for row, (entry, vector) in enumerate(zip(items, vectors)):
                        change = self._add_one(entry, vector, scopes[row], now, batch, nearest[row])
                        if change.event != "MERGE":
                            batch.add(change.item, vector)
                            if tokens is not None:
                                self._index.fresh_tokens[change.item.id] = tokens[row]
                        changes.append(change)
            except BaseException:
                self._index.discard_fresh()
                raise
            self._index.sync()  # one index pass for the whole batch
        return changes

    def _texts(
        self, content: str | Sequence[Message | Mapping[str, str]], meta: Metadata
    ) -> builtins.list[tuple[str, Metadata]]:
        if isinstance(content, str):
            return [(content, meta)]
        try:
            messages = [m if isinstance(m, Message) else Message.model_validate(m) for m in content]
        except ValidationError as exc:
            raise InvalidInputError(f"invalid chat message: {exc}") from None
        return [(m.content, {**meta, "role": m.role}) for m in messages if m.role != "system"]

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
                if not check_text(text, "memory text").strip():
                    raise InvalidInputError("memory text is empty")
                fields.update(text=text, hash=content_hash(text))
            if metadata is not None:
                meta = validate_metadata(metadata)
                check_metadata_keys(meta)
                check_metadata_values(meta)
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
                now = self.clock()
                self._ledger.update(db, memory_id, status="deleted", updated_at=now, valid_to=now)
                self._ledger.record(db, memory_id, "DELETE")
            self._index.sync()

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
        min_score: float | None = None,
        after: datetime | float | None = None,
        before: datetime | float | None = None,
        as_of: datetime | float | None = None,
        include_superseded: bool = False,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
    ) -> builtins.list[Hit]:
        """The ``k`` memories in scope most relevant to ``query``, best first.

        The score blends relevance (dense, BM25, late interaction) with recency and
        importance (weights from the constructor); ``explain`` shows each part. Each
        hit's metadata carries ``observed_at`` and, for a memory no longer current,
        ``valid_to``.

        Args:
            query: what to recall.
            user_id: scope: the user's memories (with ``agent_id``/``session_id``
                narrowing it); at least one scope id is required.
            agent_id: scope: the agent's memories.
            session_id: scope: one session's memories.
            k: how many hits at most.
            where: a metadata filter (``ragmem.filters``).
            min_score: drop hits scoring below this (off by default). Scores are on one
                scale for every query: the rank score times the best candidate's
                absolute match (see docs/memory.md).
            after: only memories observed at or after this moment.
            before: only memories observed before this moment.
            as_of: what was believed at that moment: memories observed by then and not
                yet superseded, retired or expired then (superseded ones included when
                they were current).
            include_superseded: also return memories a newer one superseded.
            since: alias of ``after``.
            until: only memories observed at or before this moment.
        """
        scope = check_scope(user_id, agent_id, session_id, require=True)
        if not isinstance(query, str) or not check_text(query, "query").strip():
            raise InvalidInputError("query must be a non-empty string")
        check_k(k)
        if min_score is not None:
            min_score = finite_number(min_score, "min_score")
        now = self.clock()
        conditions: builtins.list[Filter] = [scope_filter(scope, exact=False)]
        user_filter = parse_filter(where)
        if user_filter is not None:
            conditions.append(user_filter)
        bounds = {"after": after, "since": since, "before": before, "until": until}
        for name, moment in bounds.items():
            if moment is None:
                continue
            t = check_time(moment, name)
            if name in ("after", "since"):
                conditions.append(F(TIME) >= t)
            else:
                conditions.append(F(TIME) < t if name == "before" else F(TIME) <= t)
        if as_of is not None:
            moment = check_time(as_of, "as_of")
            conditions.append(F(TIME) <= moment)
            conditions.append(~F(VALID_TO).exists() | (F(VALID_TO) > moment))
            conditions.append(F(STATUS).isin(["active", "superseded"]))
            now = moment  # a TTL counts as of that moment too
        elif not include_superseded:
            conditions.append(F(STATUS) == "active")
        conditions.append(~F(EXPIRES).exists() | (F(EXPIRES) > now))
        boosted = self.recency_weight > 0 or self.importance_weight > 0
        hits = self._index.search(
            query, max(4 * k, 50) if boosted else k, And(filters=tuple(conditions))
        )
        ranked = self._rank(hits, now)[:k]
        if self.same_subject is not None and len(ranked) > 1:
            items = self._ledger.find([h.id for h in ranked])
            vectors = {r.id: r.vector for r in self.store.get([h.id for h in ranked])}
            ranked = mark_superseded(ranked, items, vectors, self.same_subject)
        if min_score is not None:
            ranked = [h for h in ranked if h.score >= min_score]
        return ranked

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

    def close(self) -> None:
        """Close the ledger and the store."""
        self._ledger.close()
        self.store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
