"""The SQLite file that holds the acknowledged state of a store or an index.

Every persistent part of ragmem keeps its truth in one SQLite database (WAL journal,
``synchronous=FULL``: a committed transaction survives a crash or a power cut) with
one shape: a ``meta`` table (format, configuration, the write ``generation``) and an
``items`` table of ``(seq, id, text, metadata, vector)``. ``seq`` orders items by first
insertion (a replaced item keeps its place): an item first written by generation ``g``
gets ``seq = g << 32 | i``, so the items new since a generation are a range of the
table's own key, with no index to maintain. Two small logs, emptied whenever a cache
is saved, name what else changed: ``replaced`` the places each generation rewrote (a
trigger fills it), ``deleted`` the ids it removed. Anything derived from the items (numpy
tables, graphs, postings) is a cache tagged with the database's ``uid`` and generation, so
:meth:`Database.cached` can bring it up to date without reading everything.

Locking is SQLite's own. A writer that holds the database for its whole life
(``hold=True``) keeps a write transaction open between its writes, so a second writer
gets ``StoreLockedError`` after ``lock_timeout``; readers are never blocked.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import sqlite3
import threading
import uuid
import zlib
from typing import TYPE_CHECKING, Any

from ragmem._storage.cache_file import fsync_dir, read_cache
from ragmem.errors import (
    ConfigurationError,
    CorruptIndexError,
    StorageError,
    StoreLockedError,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    import numpy as np

__all__ = ["Cached", "Database", "Item", "translate"]

Item = tuple[str, "str | None", str, "bytes | None"]
"""An item as stored: ``(id, text, metadata JSON, vector bytes)``."""
Cached = tuple["tuple[dict[str, Any], dict[str, np.ndarray]] | None", list[str], list[Item]]
"""A usable cache (fields, arrays) or None, then the ids deleted and items written since."""

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    text TEXT,
    metadata TEXT NOT NULL,
    vector BLOB,
    crc INTEGER NOT NULL
);
CREATE TABLE replaced (gen INTEGER NOT NULL, seq INTEGER NOT NULL);
CREATE TRIGGER items_replaced AFTER UPDATE ON items BEGIN
    INSERT INTO replaced SELECT CAST(value AS INTEGER) + 1, NEW.seq FROM meta
    WHERE key = 'generation';
END;
CREATE TABLE deleted (id TEXT PRIMARY KEY, gen INTEGER NOT NULL);
"""
_SCHEMA_VERSION = "2"
# seq = generation << _SEQ_BITS | position in the write
_SEQ_BITS = 32
_HEADER = b"SQLite format 3\x00"
_BUSY_MS = 30_000
# sqlite3 result codes (the low byte of an extended code), and the messages that carry
# them where Python (before 3.11) gives no code
_BUSY, _LOCKED, _CORRUPT, _FULL, _NOTADB = 5, 6, 11, 13, 26
_MESSAGES = {
    "database is locked": _BUSY,
    "database table is locked": _LOCKED,
    "malformed": _CORRUPT,
    "database or disk is full": _FULL,
    "not a database": _NOTADB,
}


def _crc(item: Item) -> int:
    id_, text, metadata, vector = item
    crc = zlib.crc32(f"{id_}\0{text}\0{metadata}".encode())
    return zlib.crc32(vector, crc) if vector else crc


def _damaged(path: object, reason: str) -> CorruptIndexError:
    # the way out of damage to the truth itself (docs/reliability.md)
    return CorruptIndexError(path, f"{reason}; `ragmem repair {path}` keeps every intact row")


def translate(exc: BaseException, path: object, *, what: str | None = None) -> BaseException:
    """The ragmem error for an ``sqlite3`` or OS error raised while using ``path``.

    Args:
        exc: the error raised.
        path: the database file, named in the message.
        what: what the file is, for messages; None for a ragmem ``Database``, whose
            damage ``ragmem repair`` mends.
    """
    code = _error_code(exc)
    if code in (_BUSY, _LOCKED):
        return StoreLockedError(path)
    if code == _FULL or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
        return StorageError(f"disk full while writing {path}: {exc}")
    if code in (_CORRUPT, _NOTADB) or "Could not decode" in str(exc):  # damaged text
        if what is not None:
            return CorruptIndexError(path, f"not a readable {what} ({exc})")
        return _damaged(path, f"not a readable ragmem database ({exc})")
    return StorageError(f"cannot use {f'{what} ' if what else ''}{path}: {exc}")


def _error_code(exc: BaseException) -> int | None:
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if isinstance(code, int):
        return code & 0xFF  # the primary code; extended codes add detail above it
    message = str(exc).lower()
    return next((c for needle, c in _MESSAGES.items() if needle in message), None)


class Database:
    """One SQLite database of items (thread-safe; calls are serialised).

    Args:
        path: the database file; created (atomically, with ``config``) when missing
            unless ``read_only``.
        kind: the format name stored in ``meta``; opening a file of another kind fails.
        config: settings fixed at creation (dimensions, metric, ...); see ``config``.
        read_only: open without writing anything.
        lock_timeout: seconds to wait for another writer.
        hold: keep the write lock from opening until ``close``.

    Raises:
        NotFoundError-like ``StorageError``: ``read_only`` and the file is missing.
        CorruptIndexError: the file is empty, damaged or not a ragmem database.
        StoreLockedError: another writer holds the lock past ``lock_timeout``.
    """

    def __init__(
        self,
        path: Path,
        *,
        kind: str,
        config: dict[str, Any],
        read_only: bool = False,
        lock_timeout: float = 0.0,
        hold: bool = False,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self.hold = hold
        self._lock = threading.RLock()
        self._in_txn = False
        self.lost = False
        if not path.exists() and not read_only:
            self._create(kind, config)
        self._check_header()
        try:
            uri = f"{path.absolute().as_uri()}?mode={'ro' if read_only else 'rw'}"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise translate(exc, path) from exc
        try:
            # reads and commits wait out another connection's brief locks (checkpoints)
            self._db.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            self._db.execute("PRAGMA synchronous = FULL")
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("kind") != kind:
                raise CorruptIndexError(path, f"holds a {meta.get('kind')!r}, not a {kind!r}")
            if meta.get("schema") != _SCHEMA_VERSION:
                raise ConfigurationError(
                    f"{path} was written by a development version of ragmem whose tables "
                    "this version does not read; delete it and index again"
                )
            self.uid: str = meta["uid"]
            self.config: dict[str, Any] = json.loads(meta["config"])
            if hold:
                self._db.execute(f"PRAGMA busy_timeout = {int(min(lock_timeout, 1e6) * 1000)}")
                self._db.execute("BEGIN IMMEDIATE")
                self._in_txn = True
                self._db.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            self.generation = self._generation()
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.Error):
                raise translate(exc, path) from exc
            raise

    def _create(self, kind: str, config: dict[str, Any]) -> None:
        """Write a new database beside ``path`` and link it into place.

        A crash leaves either no file or a whole one, so an empty or damaged file at
        ``path`` is always damage, never an interrupted creation.
        """
        tmp = self.path.with_name(f"{self.path.name}.new-{os.getpid()}")
        try:
            with contextlib.closing(sqlite3.connect(tmp, isolation_level=None)) as db:
                db.execute("PRAGMA synchronous = FULL")
                db.execute("PRAGMA journal_mode = WAL")
                db.executescript(f"BEGIN; {_SCHEMA} COMMIT;")
                values = {"kind": kind, "uid": uuid.uuid4().hex, "config": json.dumps(config)}
                values["generation"] = values["pruned"] = "0"
                values["schema"] = _SCHEMA_VERSION
                db.executemany("INSERT INTO meta VALUES (?, ?)", values.items())
            # a link never replaces: a process that created the file first keeps it
            with contextlib.suppress(FileExistsError):
                os.link(tmp, self.path)
        except (sqlite3.Error, OSError) as exc:
            raise translate(exc, self.path) from exc
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        fsync_dir(self.path.parent)

    def _check_header(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(len(_HEADER))
        except FileNotFoundError:
            raise StorageError(f"no ragmem database at {self.path}") from None
        except OSError as exc:
            raise translate(exc, self.path) from exc
        if not head:
            raise _damaged(self.path, "file is empty")
        if head != _HEADER:
            raise _damaged(self.path, "not a SQLite database")

    def _generation(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0])

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent view for several queries (a read transaction)."""
        with self._lock, self._errors():
            if self._in_txn:
                yield self._db
                return
            self._db.execute("BEGIN")
            try:
                self.generation = self._generation()
                yield self._db
            finally:
                self._db.execute("COMMIT")

    @contextlib.contextmanager
    def write(self, *, bump: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction (bumping the generation); nothing of it stays on error."""
        if self.read_only:
            raise StorageError(f"{self.path} was opened read_only")
        with self._lock, self._errors():
            if self.lost:
                raise StoreLockedError(self.path)
            if not self._in_txn:
                self._db.execute("BEGIN IMMEDIATE")
                self._in_txn = True
                # another process may have written since this one last held the lock
                self.generation = self._generation()
            try:
                yield self._db
                generation = self.generation + bump
                self._db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),)
                )
                self._db.execute("COMMIT")
                self.generation = generation
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            finally:
                self._in_txn = False
                if self.hold:
                    self._hold_again()

    def _hold_again(self) -> None:
        # Take the lock back at once: holding it between writes keeps a second writer
        # out. A writer that waited exactly into the gap wins it; this one then refuses
        # further writes rather than diverge from the file.
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._in_txn = True
        except sqlite3.OperationalError:
            self.hold, self.lost = False, True

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            if isinstance(exc, StorageError):
                raise
            raise translate(exc, self.path) from exc

    def upsert(
        self, db: sqlite3.Connection, items: Iterable[Item], *, keep_place: bool = True
    ) -> None:
        """Insert or replace items inside :meth:`write`.

        A replaced id keeps its ``seq`` (its place in ``items`` order), or with
        ``keep_place=False`` moves to the end, as if newly inserted.
        """
        first = (self.generation + 1) << _SEQ_BITS
        sql = "INSERT INTO items (seq, id, text, metadata, vector, crc) VALUES (?, ?, ?, ?, ?, ?) "
        if keep_place:
            sql += (
                "ON CONFLICT (id) DO UPDATE SET text = excluded.text, "
                "metadata = excluded.metadata, vector = excluded.vector, crc = excluded.crc"
            )
        else:
            sql = sql.replace("INSERT", "INSERT OR REPLACE", 1)
        db.executemany(sql, ((first + i, *item, _crc(item)) for i, item in enumerate(items)))

    def replace_all(
        self, db: sqlite3.Connection, items: Iterable[Item], config: dict[str, Any]
    ) -> None:
        """Replace every item and the configuration inside :meth:`write`.

        Caches of earlier generations can no longer be brought up to date: they rebuild.
        """
        db.execute("DELETE FROM items")
        db.execute("DELETE FROM replaced")
        db.execute("DELETE FROM deleted")
        db.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))
        pruned = str(self.generation + 1)
        db.execute("UPDATE meta SET value = ? WHERE key = 'pruned'", (pruned,))
        self.upsert(db, items)
        self.config = config

    def delete(self, db: sqlite3.Connection, ids: list[str]) -> None:
        """Delete items inside :meth:`write`, remembering the ids for ``changes``."""
        gen = self.generation + 1
        db.executemany("DELETE FROM items WHERE id = ?", ((i,) for i in ids))
        db.executemany("INSERT OR REPLACE INTO deleted VALUES (?, ?)", ((i, gen) for i in ids))

    def items(self, db: sqlite3.Connection, since: int = 0) -> Iterator[Item]:
        """Items written after generation ``since`` (all by default), in ``seq`` order.

        Raises:
            CorruptIndexError: an item fails its checksum.
        """
        query = "SELECT id, text, metadata, vector, crc FROM items"
        rows: Iterable[Any]
        if since:
            new = (since + 1) << _SEQ_BITS
            replaced = db.execute(
                f"{query} WHERE seq IN (SELECT seq FROM replaced WHERE gen > ?) AND seq < ? "
                "ORDER BY seq",
                (since, new),
            )
            rows = itertools.chain(
                replaced, db.execute(f"{query} WHERE seq >= ? ORDER BY seq", (new,))
            )
        else:
            rows = db.execute(query + " ORDER BY seq")
        for *item, crc in rows:
            if _crc(item) != crc:
                raise _damaged(self.path, f"item {item[0]!r} fails its checksum")
            yield item

    def count(self, db: sqlite3.Connection) -> int:
        """How many items there are (read from an index: cheap even when there are many)."""
        return int(db.execute("SELECT count(*) FROM items").fetchone()[0])

    def cached(self, db: sqlite3.Connection, path: Path | None, fmt: str) -> Cached:
        """The cache file ``path`` of this database if it can be brought up to date, with
        the ids deleted and the items written since; else no cache, and every item.

        Args:
            db: the connection, inside :meth:`read`.
            path: the cache file (None: do not use one).
            fmt: the format name the cache must carry.
        """
        found = None if path is None else read_cache(path, {"format": fmt, "uid": self.uid})
        if found is not None and found[0]["generation"] <= self.generation:
            since = found[0]["generation"]
            pruned = db.execute("SELECT value FROM meta WHERE key = 'pruned'").fetchone()[0]
            if since >= int(pruned):  # else deletions of that time are forgotten: rebuild
                query = "SELECT id FROM deleted WHERE gen > ?"
                deleted = [r[0] for r in db.execute(query, (since,))]
                return found, deleted, list(self.items(db, since))
        return None, [], list(self.items(db))

    def prune(self, generation: int) -> None:
        """Forget deletions up to ``generation``: a cache of it was written."""
        with self.write(bump=False) as db:
            db.execute("DELETE FROM replaced WHERE gen <= ?", (generation,))
            db.execute("DELETE FROM deleted WHERE gen <= ?", (generation,))
            db.execute("UPDATE meta SET value = ? WHERE key = 'pruned'", (str(generation),))

    def close(self) -> None:
        """Roll back the held transaction and close the connection."""
        with self._lock:
            self.hold = False
            with contextlib.suppress(sqlite3.Error):
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                self._db.close()
