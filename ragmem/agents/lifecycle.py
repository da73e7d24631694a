"""How memories leave: soft forgetting, hard purging, and export/import of the ledger.

``forget`` and ``delete`` are soft: the memory leaves search but stays in the ledger
with its history, and can be exported with ``include_deleted=True``. ``purge`` is the
right to be forgotten: the memory, its history and its token vectors are erased from
the ledger (SQLite overwrites the freed pages with zeros and the write-ahead log is
truncated), then from the vector store and the in-memory indexes. The erase is one
transaction that also queues the index deletions, so a crash at any moment leaves the
memories either wholly present or, once reopened, wholly gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

from ragmem.agents.checks import (
    check_metadata_values,
    check_text,
    check_timestamp,
    finite_number,
)
from ragmem.agents.index import MemoryIndex
from ragmem.agents.records import Ledger, MemoryItem
from ragmem.agents.scope import check_scope, scope_sql
from ragmem.errors import InvalidInputError
from ragmem.filters import FilterLike, matches, parse_filter
from ragmem.stores.base import VectorStore

__all__ = ["Lifecycle"]


class Lifecycle:
    """Forgetting, purging, export and import for ``Memory`` (which inherits them)."""

    _ledger: Ledger
    _index: MemoryIndex
    _write_lock: threading.RLock
    store: VectorStore
    clock: Callable[[], float]

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
        """Soft-delete memories (reversible; each keeps its history).

        Within the scope given, forgets those matching ``where`` (and, if also given,
        older than ``older_than`` seconds), or older than ``older_than`` alone, or, with
        neither, every memory of the scope; plus, when ``expired``, any whose TTL has
        passed. Without a scope and without ``where``/``older_than`` only expired
        memories go. Returns how many were forgotten.

        Example:
            >>> memory.forget(user_id="bob")  # doctest: +SKIP
            12
        """
        scope = check_scope(user_id, agent_id, session_id, require=False)
        tree = parse_filter(where)
        if older_than is not None:
            older_than = finite_number(older_than, "older_than")
        if tree is None and older_than is None and not expired and not scope:
            raise InvalidInputError("forget needs a scope, where=, older_than= or expired=True")
        everything = bool(scope) and tree is None and older_than is None
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
                chosen = chosen or everything
                expired_now = expired and item.expires_at is not None and item.expires_at <= now
                if chosen or expired_now:
                    victims.append(item)
            with self._ledger.transaction() as db:
                for item in victims:
                    self._ledger.update(db, item.id, status="deleted", updated_at=now, valid_to=now)
                    self._ledger.record(db, item.id, "FORGET", detail={"ttl": item.expires_at})
            self._index.sync()
        return len(victims)

    def restore(self, memory_id: str) -> MemoryItem:
        """Make a superseded or deleted memory active again (undoes ``delete``, ``forget``
        and an LLM's UPDATE or DELETE decision); the step is kept in its history."""
        with self._write_lock:
            (item,) = self._ledger.get([memory_id])
            if item.status != "active":
                with self._ledger.transaction() as db:
                    self._ledger.update(
                        db,
                        memory_id,
                        status="active",
                        valid_to=None,
                        superseded_by=None,
                        updated_at=self.clock(),
                    )
                    self._ledger.record(db, memory_id, "RESTORE", detail={"was": item.status})
                self._index.sync()
        return self._ledger.get([memory_id])[0]

    def purge(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> int:
        """Erase memories for good: ledger rows, history, vectors, BM25 postings and
        token vectors. Not reversible, unlike ``delete`` and ``forget``.

        Selects every memory (any status) in the scope given, narrowed to ``ids`` when
        both are given; unknown ids are ignored. Returns how many were erased.

        Example:
            >>> memory.purge(user_id="bob")  # doctest: +SKIP
            12
        """
        scope = check_scope(user_id, agent_id, session_id, require=False)
        if ids is not None and (isinstance(ids, str) or not all(isinstance(i, str) for i in ids)):
            raise InvalidInputError("ids must be a list of memory id strings")
        if not scope and ids is None:
            raise InvalidInputError("purge needs user_id=, agent_id=, session_id= or ids=")
        clause, params = scope_sql(scope)
        with self._write_lock:
            if ids is None:
                victims = [m.id for m in self._ledger.select(clause, params)]
            else:
                found = self._ledger.find(list(ids))
                victims = [m.id for m in self._ledger.select(clause, params) if m.id in found]
            if victims:
                self._ledger.purge(victims)
                self._index.sync()
                compact = getattr(self.store, "compact", None)
                if callable(compact):  # drop the erased rows from the store's files now
                    compact()
        return len(victims)

    # -- export and import --------------------------------------------------------------------

    def export(self, target: str | Path | IO[str], *, include_deleted: bool = False) -> int:
        """Write memories as JSON lines (active and superseded ones, and deleted ones
        too with ``include_deleted``); returns how many. Purged memories are gone."""
        clause = "1 = 1" if include_deleted else "status != 'deleted'"
        items = self._ledger.select(clause + " ORDER BY timestamp, rowid")
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
        if isinstance(source, (str, Path)):
            lines: Iterable[str] = Path(source).read_text("utf-8").splitlines()
        else:
            lines = source
        items = [MemoryItem.model_validate_json(line) for line in lines if line.strip()]
        for item in items:  # as strict as add: one bad line must not brick the ledger
            check_text(item.text, "memory text")
            check_metadata_values(item.metadata)
            check_timestamp(item.timestamp)
            check_scope(item.user_id, item.agent_id, item.session_id, require=True)
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
