"""CachedEmbedder: a persistent SQLite cache in front of any Embedder.

Rows are keyed by (model name, dimensions, purpose, sha256 of the text) and carry a
checksum over key and vector bytes, so a damaged or mismatched row is detected rather
than returned. The database runs in WAL mode with a busy timeout, so several processes
can share one cache file.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ragmem._storage.database import translate
from ragmem.embedders.base import Embedder
from ragmem.errors import ConfigurationError, CorruptIndexError, StorageError

if TYPE_CHECKING:
    import os
    from collections.abc import Iterator, Sequence
    from types import TracebackType

    from ragmem.types import Purpose, Vectors

__all__ = ["CachedEmbedder"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = "1"
OnCorrupt = Literal["raise", "rebuild"]

# SQLite builds before 3.32 allow at most 999 bound parameters per statement.
_LOOKUP_CHUNK = 900
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    dims INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    text_sha256 BLOB NOT NULL,
    vector BLOB NOT NULL,
    checksum BLOB NOT NULL,
    PRIMARY KEY (model, dims, purpose, text_sha256)
) WITHOUT ROWID""",
)


class CachedEmbedder(Embedder):
    """Wraps an embedder; vectors already computed are read from an SQLite file.

    Only the texts missing from the cache go to the wrapped embedder, in one call per
    ``batch_size`` texts, so it still batches (and length-sorts) them itself.

    Args:
        embedder: the model to cache; its ``name`` and ``dimensions`` are part of the key,
            so one file can hold several models.
        path: the SQLite file (created with its parent directory if missing).
        on_corrupt: ``"raise"`` (default) raises CorruptIndexError naming the file when it
            is not a valid cache or a row fails its checksum; ``"rebuild"`` logs a warning,
            starts an empty cache (or drops the bad row) and recomputes.
        batch_size: texts looked up per query and handed to the embedder at once.
        timeout: seconds to wait for another process's write lock.

    Example:
        >>> import tempfile, os
        >>> from ragmem.embedders import CachedEmbedder, HashingEmbedder
        >>> path = os.path.join(tempfile.mkdtemp(), "cache.sqlite")
        >>> cached = CachedEmbedder(HashingEmbedder(32), path=path)
        >>> _ = cached.embed(["a", "b"]); _ = cached.embed(["a", "c"])
        >>> (cached.hits, cached.misses)
        (1, 3)
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        path: str | os.PathLike[str],
        on_corrupt: OnCorrupt = "raise",
        batch_size: int = 1024,
        timeout: float = 30.0,
    ) -> None:
        if on_corrupt not in ("raise", "rebuild"):
            raise ConfigurationError(f"on_corrupt must be 'raise' or 'rebuild', got {on_corrupt!r}")
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be at least 1, got {batch_size}")
        self.embedder = embedder
        self.name = embedder.name
        self.dimensions = embedder.dimensions
        self.batch_size = batch_size
        self.path = Path(path).expanduser()
        self.on_corrupt: OnCorrupt = on_corrupt
        self.timeout = timeout
        #: texts served from the cache / computed by the wrapped embedder, since creation
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except CorruptIndexError as exc:
            # only a damaged file is rebuilt: a busy or full one raised a StorageError
            if on_corrupt == "raise":
                raise
            logger.warning("embedding cache %s is unusable (%s); rebuilding it", self.path, exc)
            _remove_database(self.path)
            self._db = self._open()

    # -- Embedder

    def _embed_batch(self, texts: Sequence[str], purpose: Purpose) -> Vectors:
        keys, out, todo = self._start(texts, purpose)
        if todo:
            fresh = self.embedder.embed(list(todo.values()), purpose=purpose)
            self._finish(keys, out, todo, fresh, purpose)
        return out

    async def _embed_batch_async(self, texts: Sequence[str], purpose: Purpose) -> Vectors:
        keys, out, todo = self._start(texts, purpose)
        if todo:
            fresh = await self.embedder.embed_async(list(todo.values()), purpose=purpose)
            self._finish(keys, out, todo, fresh, purpose)
        return out

    def _start(
        self, texts: Sequence[str], purpose: Purpose
    ) -> tuple[list[bytes], Vectors, dict[bytes, str]]:
        """Look the batch up; returns keys, vectors so far and the distinct texts to embed."""
        keys = [hashlib.sha256(text.encode("utf-8")).digest() for text in texts]
        out, missing = self._lookup(keys, purpose)
        todo: dict[bytes, str] = {}
        for position in missing:
            todo.setdefault(keys[position], texts[position])
        return keys, out, todo

    def _finish(
        self,
        keys: list[bytes],
        out: Vectors,
        todo: dict[bytes, str],
        fresh: Vectors,
        purpose: Purpose,
    ) -> None:
        """Store freshly embedded vectors and fill them into every position that wanted them."""
        row_of = {key: row for row, key in enumerate(todo)}
        for position, key in enumerate(keys):
            row = row_of.get(key)
            if row is not None:
                out[position] = fresh[row]
        self._store(list(todo), fresh, purpose)

    # -- management

    def __len__(self) -> int:
        """Cached vectors for this embedder (all purposes)."""
        with self._lock, self._translated():
            row = self._db.execute(
                "SELECT COUNT(*) FROM vectors WHERE model = ? AND dims = ?",
                (self.name, self.dimensions),
            ).fetchone()
        return int(row[0])

    def clear(self) -> None:
        """Drop this embedder's vectors from the cache (other models' stay)."""
        with self._lock, self._translated():
            _write(
                self._db,
                [
                    (
                        "DELETE FROM vectors WHERE model = ? AND dims = ?",
                        [(self.name, self.dimensions)],
                    )
                ],
            )

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> CachedEmbedder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.embedder!r}, path={str(self.path)!r})"

    # -- internals

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """SQLite's errors as ragmem's: busy, corrupt, or any other storage failure."""
        try:
            yield
        except sqlite3.Error as exc:
            raise translate(exc, self.path, what="embedding cache") from exc

    def _open(self) -> sqlite3.Connection:
        with self._translated():
            db = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
        try:
            with self._translated():
                self._set_up(db)
        except BaseException:
            db.close()
            raise
        return db

    def _set_up(self, db: sqlite3.Connection) -> None:
        db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        # WAL: readers never block the one writer, and a crash mid-write leaves the
        # last committed state; several processes may share the file.
        if db.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise StorageError(f"embedding cache {self.path}: the file system refuses WAL mode")
        db.execute("PRAGMA synchronous = NORMAL")
        problems = db.execute("PRAGMA quick_check").fetchall()
        if problems != [("ok",)]:
            raise CorruptIndexError(self.path, f"integrity check failed: {problems[:3]}")
        _write(
            db,
            [(statement, []) for statement in _SCHEMA]
            + [
                (
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('format_version', ?)",
                    [(FORMAT_VERSION,)],
                )
            ],
        )
        version = db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        if version is None or version[0] != FORMAT_VERSION:
            raise CorruptIndexError(
                self.path, f"unknown cache format {version}, expected {FORMAT_VERSION}"
            )

    def _lookup(self, keys: list[bytes], purpose: Purpose) -> tuple[Vectors, list[int]]:
        """Vectors for ``keys`` (rows of misses left empty) and the positions missed."""
        out = np.empty((len(keys), self.dimensions), np.float32)
        found: dict[bytes, bytes] = {}
        bad: list[bytes] = []
        with self._lock, self._translated():
            for chunk in _chunks(sorted(set(keys)), _LOOKUP_CHUNK):
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    "SELECT text_sha256, vector, checksum FROM vectors WHERE model = ? "
                    f"AND dims = ? AND purpose = ? AND text_sha256 IN ({marks})",
                    (self.name, self.dimensions, purpose, *chunk),
                ).fetchall()
                for key, blob, checksum in rows:
                    if self._valid(key, purpose, blob, checksum):
                        found[key] = blob
                    else:
                        bad.append(key)
            if bad:
                self._handle_bad_rows(bad, purpose)
        missing: list[int] = []
        for position, key in enumerate(keys):
            blob = found.get(key)
            if blob is None:
                missing.append(position)
            else:
                out[position] = np.frombuffer(blob, dtype="<f4")
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        return out, missing

    def _valid(self, key: bytes, purpose: str, blob: bytes, checksum: bytes) -> bool:
        if len(blob) != self.dimensions * 4:
            return False
        return checksum == _checksum(self.name, self.dimensions, purpose, key, blob)

    def _handle_bad_rows(self, keys: list[bytes], purpose: Purpose) -> None:
        reason = f"{len(keys)} cached vector(s) fail their checksum or shape"
        if self.on_corrupt == "raise":
            raise CorruptIndexError(self.path, reason)
        logger.warning("embedding cache %s: %s; recomputing them", self.path, reason)
        delete = (
            "DELETE FROM vectors WHERE model = ? AND dims = ? AND purpose = ? AND text_sha256 = ?"
        )
        _write(self._db, [(delete, [(self.name, self.dimensions, purpose, k) for k in keys])])

    def _store(self, keys: list[bytes], vectors: Vectors, purpose: Purpose) -> None:
        rows = []
        for key, vector in zip(keys, vectors, strict=True):
            blob = np.ascontiguousarray(vector, dtype="<f4").tobytes()
            checksum = _checksum(self.name, self.dimensions, purpose, key, blob)
            rows.append((self.name, self.dimensions, purpose, key, blob, checksum))
        with self._lock, self._translated():
            # Another process may have stored the same text meanwhile: same model,
            # same text, so either row is right.
            _write(self._db, [("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?, ?)", rows)])


def _write(db: sqlite3.Connection, statements: list[tuple[str, Sequence[Any]]]) -> None:
    """Run ``statements`` (each with its parameter rows) in one write transaction."""
    # IMMEDIATE takes the write lock up front, so the busy timeout applies here rather
    # than failing at COMMIT when another process wrote in between.
    db.execute("BEGIN IMMEDIATE")
    try:
        for sql, rows in statements:
            if rows:
                db.executemany(sql, rows)
            else:
                db.execute(sql)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _checksum(model: str, dims: int, purpose: str, key: bytes, blob: bytes) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{model}\x00{dims}\x00{purpose}\x00".encode())
    digest.update(key)
    digest.update(blob)
    return digest.digest()


def _chunks(items: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
