"""The memory ledger: every memory and every change to it, in SQLite.

SQLite is the source of truth for agent memory. The vector store and the BM25 index are
derived from it: every change is written here together with an *outbox* row in one
transaction, and the outbox row is removed only after the indexes have applied the
change. A crash between the two leaves the outbox row behind, and the next open replays
it, so the indexes never drift from the ledger and no acknowledged memory is lost.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from ragmem.errors import CorruptIndexError, NotFoundError
from ragmem.types import Metadata

__all__ = ["Event", "HistoryEvent", "Ledger", "MemoryChange", "MemoryInput", "MemoryItem", "Status"]

Status = Literal["active", "superseded", "deleted"]
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memories (
    id TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    hash TEXT NOT NULL,
    user_id TEXT, agent_id TEXT, session_id TEXT,
    key TEXT,
    metadata TEXT NOT NULL,
    importance REAL NOT NULL,
    timestamp REAL NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    expires_at REAL,
    status TEXT NOT NULL,
    superseded_by TEXT,
    mentions INTEGER NOT NULL DEFAULT 1,
    valid_to REAL
);
CREATE INDEX IF NOT EXISTS memories_scope ON memories (user_id, agent_id, session_id, status);
CREATE INDEX IF NOT EXISTS memories_hash ON memories (hash, status);
CREATE INDEX IF NOT EXISTS memories_key ON memories (key, status);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    memory_id TEXT NOT NULL,
    event TEXT NOT NULL,
    text TEXT,
    metadata TEXT,
    detail TEXT,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS history_memory ON history (memory_id, seq);
CREATE TABLE IF NOT EXISTS token_vectors (
    memory_id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    memory_id TEXT NOT NULL,
    action TEXT NOT NULL
);
"""

_COLUMNS = (
    "id, text, hash, user_id, agent_id, session_id, key, metadata, importance, timestamp, "
    "created_at, updated_at, expires_at, status, superseded_by, mentions, valid_to"
)


class MemoryItem(BaseModel):
    """One memory as stored: its text, scope, times and lifecycle status.

    ``timestamp`` is when the memory was observed (said), ``created_at`` when it was
    stored; ``valid_to`` is set once it stops being current (superseded, deleted or
    forgotten).
    """

    id: str
    text: str
    hash: str
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    key: str | None = None
    metadata: Metadata = Field(default_factory=dict)
    importance: float = 0.5
    timestamp: float
    created_at: float
    updated_at: float
    expires_at: float | None = None
    status: Status = "active"
    superseded_by: str | None = None
    mentions: int = 1
    valid_to: float | None = None


Event = Literal["ADD", "MERGE", "SUPERSEDE", "UPDATE", "DELETE", "NONE"]


class MemoryChange(BaseModel):
    """What ``add`` did with one piece of content (or, with ``infer=True``, one fact).

    ``superseded`` names the memory a SUPERSEDE or UPDATE replaced; for DELETE and
    NONE, ``item`` is the existing memory the decision was about.
    """

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


class HistoryEvent(BaseModel):
    """One change to a memory: ADD, MERGE, UPDATE, SUPERSEDE, DELETE or FORGET."""

    memory_id: str
    event: str
    text: str | None
    metadata: Metadata | None
    detail: dict[str, Any]
    at: float


def _row_to_item(row: sqlite3.Row) -> MemoryItem:
    data = dict(row)
    data["metadata"] = json.loads(data["metadata"])
    return MemoryItem.model_validate(data)


class Ledger:
    """SQLite-backed records, history and outbox for agent memory (thread-safe)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        target = ":memory:" if self.path is None else str(self.path)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA busy_timeout = 10000")
            # deleted rows are overwritten with zeros, so a purged text leaves no bytes
            self._db.execute("PRAGMA secure_delete = ON")
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = FULL")
            self._db.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as exc:
            raise CorruptIndexError(target, f"not a readable memory database ({exc})") from exc

    def _check_version(self) -> None:
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(memories)")}
        if "valid_to" not in columns:  # ledgers written before memories had a validity end
            self._db.execute("ALTER TABLE memories ADD COLUMN valid_to REAL")
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(row["value"]) != SCHEMA_VERSION:
            raise CorruptIndexError(
                self.path, f"schema version {row['value']}, this ragmem reads {SCHEMA_VERSION}"
            )

    def meta(self, key: str) -> str | None:
        """A value recorded with ``set_meta``, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        """Record a value about the whole memory (e.g. its embedder)."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def is_empty(self) -> bool:
        """True when the ledger holds no memory and no history at all."""
        with self._lock:
            row = self._db.execute(
                "SELECT EXISTS (SELECT 1 FROM memories) OR EXISTS (SELECT 1 FROM history)"
            ).fetchone()
        return not row[0]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all.

        Inside another transaction of the same thread it joins that one (which commits
        or rolls back the whole)."""
        with self._lock:
            if self._db.in_transaction:
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- writes (call inside ``transaction``) ------------------------------------------------

    def insert(self, db: sqlite3.Connection, item: MemoryItem) -> None:
        """Add a new memory row and queue its indexing."""
        values = item.model_dump()
        values["metadata"] = json.dumps(item.metadata, ensure_ascii=False)
        names = [c.strip() for c in _COLUMNS.split(",")]
        db.execute(
            f"INSERT INTO memories ({_COLUMNS}) VALUES ({', '.join('?' * len(names))})",
            [values[n] for n in names],
        )
        self.enqueue(db, item.id, "index")

    def update(self, db: sqlite3.Connection, item_id: str, **fields: Any) -> None:
        """Change columns of one memory and queue its re-indexing."""
        if "metadata" in fields:
            fields["metadata"] = json.dumps(fields["metadata"], ensure_ascii=False)
        assignments = ", ".join(f"{name} = ?" for name in fields)
        db.execute(f"UPDATE memories SET {assignments} WHERE id = ?", [*fields.values(), item_id])
        self.enqueue(db, item_id, "index")

    def record(
        self,
        db: sqlite3.Connection,
        item_id: str,
        event: str,
        *,
        text: str | None = None,
        metadata: Metadata | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one history event."""
        db.execute(
            "INSERT INTO history (memory_id, event, text, metadata, detail, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                item_id,
                event,
                text,
                None if metadata is None else json.dumps(metadata, ensure_ascii=False),
                json.dumps(detail or {}, ensure_ascii=False),
                time.time(),
            ),
        )

    @staticmethod
    def enqueue(db: sqlite3.Connection, item_id: str, action: str) -> None:
        db.execute("INSERT INTO outbox (memory_id, action) VALUES (?, ?)", (item_id, action))

    def put_tokens(self, items: Sequence[tuple[str, str, np.ndarray]]) -> None:
        """Keep token vectors (float16) for memories, keyed by id and the text's hash."""
        rows = [
            (item_id, digest, len(matrix), np.asarray(matrix, np.float16).tobytes())
            for item_id, digest, matrix in items
        ]
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO token_vectors VALUES (?, ?, ?, ?)", rows)

    def tokens(self, dimensions: int) -> dict[str, tuple[str, np.ndarray]]:
        """Stored token vectors of memories not deleted: id -> (text hash, float32 matrix)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT t.memory_id, t.hash, t.n, t.data FROM token_vectors t "
                "JOIN memories m ON m.id = t.memory_id WHERE m.status != 'deleted'"
            ).fetchall()
        out = {}
        for row in rows:
            data = np.frombuffer(row["data"], np.float16)
            if data.size != row["n"] * dimensions:
                raise CorruptIndexError(
                    self.path, f"token vectors of {row['memory_id']} are damaged"
                )
            out[row["memory_id"]] = (
                row["hash"],
                data.reshape(row["n"], dimensions).astype(np.float32),
            )
        return out

    def purge(self, ids: Sequence[str]) -> None:
        """Erase memories with their history and token vectors, in one transaction; the
        outbox entries left behind make ``sync`` erase them from every index too."""
        with self.transaction() as db:
            for start in range(0, len(ids), 500):
                part = list(ids[start : start + 500])
                marks = ", ".join("?" * len(part))
                db.execute(f"DELETE FROM memories WHERE id IN ({marks})", part)
                db.execute(f"DELETE FROM history WHERE memory_id IN ({marks})", part)
                db.execute(f"DELETE FROM token_vectors WHERE memory_id IN ({marks})", part)
                for item_id in part:
                    self.enqueue(db, item_id, "purge")
        if self.path is not None:
            with self._lock:
                # old page images of the erased rows live on in the write-ahead log
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- outbox -------------------------------------------------------------------------------

    def pending(self) -> list[tuple[int, str]]:
        """Queued index changes as (seq, memory id), oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT seq, memory_id FROM outbox ORDER BY seq").fetchall()
        return [(int(r["seq"]), str(r["memory_id"])) for r in rows]

    def done(self, seqs: Sequence[int]) -> None:
        """Mark queued changes as applied to the indexes."""
        if not seqs:
            return
        with self.transaction() as db:
            db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    # -- reads --------------------------------------------------------------------------------

    def get(self, ids: Sequence[str]) -> list[MemoryItem]:
        """Memories by id, in the order asked; NotFoundError names the missing ones."""
        found = self.find(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError(missing, what="memory ids")
        return [found[i] for i in ids]

    def find(self, ids: Sequence[str]) -> dict[str, MemoryItem]:
        """The memories that exist among ``ids``, by id."""
        out: dict[str, MemoryItem] = {}
        with self._lock:
            for start in range(0, len(ids), 500):
                part = list(ids[start : start + 500])
                rows = self._db.execute(
                    f"SELECT {_COLUMNS} FROM memories WHERE id IN ({', '.join('?' * len(part))})",
                    part,
                ).fetchall()
                out.update((row["id"], _row_to_item(row)) for row in rows)
        return out

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[MemoryItem]:
        """Memories matching a WHERE clause (``sql`` is trusted, written by ragmem)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM memories WHERE {sql}", params)
            return [_row_to_item(r) for r in rows.fetchall()]

    def history(self, item_id: str) -> list[HistoryEvent]:
        """Every change to one memory, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT memory_id, event, text, metadata, detail, at FROM history "
                "WHERE memory_id = ? ORDER BY seq",
                (item_id,),
            ).fetchall()
        return [
            HistoryEvent(
                memory_id=r["memory_id"],
                event=r["event"],
                text=r["text"],
                metadata=None if r["metadata"] is None else json.loads(r["metadata"]),
                detail=json.loads(r["detail"]),
                at=r["at"],
            )
            for r in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()
