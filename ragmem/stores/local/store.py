"""LocalVectorStore: the built-in numpy store (exact search, columnar filters, crash-safe files)."""

from __future__ import annotations

import functools
import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ragmem.errors import ConfigurationError, CorruptIndexError, StorageError
from ragmem.stores.base import VectorStore
from ragmem.stores.local import disk
from ragmem.stores.local.flat import prepare_queries
from ragmem.stores.local.indexes import IndexKind, make_index
from ragmem.stores.local.locks import ReadWriteLock
from ragmem.stores.local.masks import MaskCache
from ragmem.stores.local.quantized import CodeDtype
from ragmem.stores.local.records import Records, stored_metadata
from ragmem.stores.local.table import VectorTable
from ragmem.types import Hit, Metadata, Metric, Record, Vectors

if TYPE_CHECKING:
    from ragmem._storage.database import Database
    from ragmem.filters import Filter

__all__ = ["LocalVectorStore"]

Mask = npt.NDArray[np.bool_]
# Tombstones are dropped once they outnumber live rows (and this floor).
_VACUUM_FLOOR = 1024


class _Files:
    """The open database, closed by ``close`` or when the store is garbage collected."""

    def __init__(self) -> None:
        self.db: Database | None = None

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


class LocalVectorStore(VectorStore):
    """The built-in vector store: numpy exact search with columnar metadata filters.

    Rows are kept in insertion order (a replaced id keeps its row), which is how
    ties in score are broken. With ``path`` the store lives in that directory: every
    ``upsert`` and ``delete`` is one SQLite transaction, committed (fsync'd) before it
    returns, so acknowledged writes survive a crash at any instant. The in-memory table
    (and the HNSW graph) are caches of the database, saved on ``close`` and
    ``compact`` and brought up to date from it on open. One process at a time may
    open a directory for writing; any number may open it ``read_only`` (they see the
    state as of opening). Safe to share between threads (many readers, one writer).

    Args:
        dimensions: width of every vector.
        metric: ``"cosine"`` (default), ``"dot"`` or ``"l2"``.
        path: directory of a persistent store (created when missing); in memory if None.
        read_only: open an existing store without taking the write lock; writes raise.
        lock_timeout: seconds to wait for another process's write lock before raising
            StoreLockedError (0 fails at once, ``math.inf`` waits for ever).
        compact_after: bytes written since the caches were last saved past which a
            write first saves them again (only when that is also at least half the
            table's size, so the cost stays proportional to the writes); it bounds
            the catch-up work of an open after a crash.
        index: ``"flat"`` (exact, default), ``"hnsw"`` (an HNSW graph, extra
            ``ragmem[ann]``; exact search where that is cheaper, e.g. for selective
            filters) or ``"auto"`` (flat below 20,000 rows, HNSW above). The graph is
            derived from the rows and saved with each snapshot; it is rebuilt when its
            file is missing, stale or corrupt.
        dtype: codes scanned by flat search: ``"float32"`` (exact), ``"float16"``,
            ``"int8"`` or ``"binary"``, with the best candidates rescored exactly, so
            scores are always exact float32 scores.
        coarse_dims: flat search scans only the first this many dimensions, then
            rescores with all of them (for Matryoshka embeddings).
        rescore: candidates rescored per requested result with ``dtype``/``coarse_dims``.
        m: HNSW graph degree.
        ef_construction: HNSW candidate list size while building.
        ef_search: HNSW candidate list size while searching (widened for filters).

    Example:
        >>> import numpy as np
        >>> store = LocalVectorStore(dimensions=3)
        >>> store.upsert(["x", "y"], np.eye(3, dtype=np.float32)[:2],
        ...              texts=["first", "second"], metadata=[{"lang": "en"}, {"lang": "de"}])
        >>> store.search(np.array([1, 1, 0], np.float32), k=5, where={"lang": "de"})[0][0].id
        'y'
        >>> import tempfile
        >>> with LocalVectorStore(dimensions=3, path=tempfile.mkdtemp()) as disk:
        ...     disk.upsert(["a"], np.ones((1, 3), np.float32))
        ...     disk.count()
        1
    """

    def __init__(
        self,
        dimensions: int,
        *,
        metric: Metric = "cosine",
        path: str | os.PathLike[str] | None = None,
        read_only: bool = False,
        lock_timeout: float = 0.0,
        compact_after: int = 64 * 2**20,
        index: IndexKind = "flat",
        dtype: CodeDtype = "float32",
        coarse_dims: int | None = None,
        rescore: int | None = None,
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
    ) -> None:
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
            raise ConfigurationError(f"dimensions must be a positive integer, got {dimensions!r}")
        if read_only and path is None:
            raise ConfigurationError("read_only=True needs a path")
        if not lock_timeout >= 0:
            raise ConfigurationError(f"lock_timeout must be >= 0, got {lock_timeout!r}")
        if not isinstance(compact_after, int) or compact_after < 1:
            raise ConfigurationError(
                f"compact_after must be a positive integer, got {compact_after!r}"
            )
        self.dimensions = dimensions
        self.metric = self._check_metric(metric)
        self.path = None if path is None else Path(path)
        self.read_only = read_only
        self._compact_after = compact_after
        self._rw = ReadWriteLock()
        self._table = VectorTable(dimensions)
        self._new_index = functools.partial(
            make_index,
            metric=self.metric,
            index=index,
            dtype=dtype,
            coarse_dims=coarse_dims,
            rescore=rescore,
            m=m,
            ef_construction=ef_construction,
            ef_search=ef_search,
        )
        self._index = self._new_index(self._table)
        self._records = Records()
        self._masks = MaskCache()
        self._closed = False
        self._cached: int | None = None  # generation of the saved caches
        self._unsaved_bytes = 0  # written since the caches were saved
        self._files = _Files()
        weakref.finalize(self, self._files.close)
        if self.path is not None:
            self._open(self.path, lock_timeout)

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return f"LocalVectorStore(dimensions={self.dimensions}, metric={self.metric!r}{where})"

    # -- opening and closing ------------------------------------------------------------------

    def _open(self, directory: Path, lock_timeout: float) -> None:
        db = disk.open_database(
            directory,
            dimensions=self.dimensions,
            metric=self.metric,
            read_only=self.read_only,
            lock_timeout=lock_timeout,
        )
        self._files.db = db
        try:
            with db.read() as conn:
                loaded = disk.load_rows(directory, db, conn, self.dimensions)
                whole = self._load(directory, db, loaded)
                if not whole or len(self._records) != db.count(conn):
                    # a cache that does not add up is stale whatever its tag says
                    self._reset_memory()
                    loaded = disk.load_rows(directory, db, conn, self.dimensions, cache=False)
                    self._load(directory, db, loaded)
        except ValueError as exc:
            self._files.close()
            raise CorruptIndexError(db.path, f"inconsistent rows ({exc})") from exc
        except BaseException:
            self._files.close()
            raise

    def _load(self, directory: Path, db: Database, loaded: disk.Loaded) -> bool:
        """Adopt the rows read at open, then the changes since; False when the cache has no
        vectors (a graph keeps them) and this store has no graph to take them from."""
        if loaded.matrix is None and not self._table.vectors_elsewhere:
            return False
        self._table.adopt(loaded.matrix, len(loaded.ids))
        metadata = [stored_metadata(m) for m in loaded.metadata]
        self._records = Records(loaded.ids, loaded.texts, metadata)
        self._table.kill(np.array(self._records.dead(), np.int64))
        # before the changes apply, so they update a graph loaded for the cached table
        fresh = self._index.load(directory, f"{db.uid}/{loaded.generation}")
        if not self._table.holds_vectors and not fresh:
            return False
        self._cached = loaded.generation if fresh and loaded.generation == db.generation else None
        if loaded.deleted:
            self._apply_delete(loaded.deleted)
        if loaded.written:
            self._apply_upsert(*disk.read_items(loaded.written, self.dimensions))
        if loaded.deleted or loaded.written:
            self._cached = None
        return True

    def _reset_memory(self) -> None:
        self._table = VectorTable(self.dimensions)
        self._index = self._new_index(self._table)
        self._records = Records()
        self._masks.clear()

    def close(self) -> None:
        """Save the caches if writes made them stale, then release the database."""
        with self._rw.write():
            if self._closed:
                return
            try:
                db = self._files.db
                if db is not None and not (
                    self.read_only or db.lost or self._cached == db.generation
                ):
                    self._save_caches()
            finally:
                self._closed = True
                self._files.close()

    def __enter__(self) -> LocalVectorStore:
        return self

    def compact(self) -> None:
        """Drop deleted rows and save the caches now.

        Writes do this on their own as they accumulate; call it before copying the
        directory, or after deleting much of the store to give the memory back.
        """
        with self._rw.write():
            self._check_writable()
            self._vacuum()
            if self._files.db is not None:
                self._save_caches()

    def _save_caches(self) -> None:
        """Write the table and graph caches of the current generation.

        Tombstones are kept, so a reopened store has the same rows as this one and
        scores every query bit for bit the same.
        """
        db, directory = self._files.db, self.path
        assert db is not None
        assert directory is not None
        generation = db.generation
        matrix = None if self._table.vectors_elsewhere else self._table.view()  # else: graph's
        records = self._records
        disk.write_table(directory, db, matrix, records.ids, records.texts, records.metadata)
        self._index.save(directory, f"{db.uid}/{generation}")
        db.prune(generation)
        self._cached = generation
        self._unsaved_bytes = 0

    # -- writes -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the store is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise StorageError(f"store at {self.path} was opened read_only")

    def _upsert(
        self, ids: list[str], vectors: Vectors, texts: list[str | None], metadata: list[Metadata]
    ) -> None:
        if self.metric == "cosine":
            vectors = prepare_queries(vectors, "cosine")
        items = disk.stored_items(ids, vectors, texts, metadata)
        with self._rw.write():
            self._check_writable()
            db = self._files.db
            if db is not None:
                with db.write() as conn:
                    db.upsert(conn, items)
                self._unsaved_bytes += sum(len(i[2]) + len(i[3] or b"") for i in items)
            self._apply_upsert(ids, vectors, texts, metadata)
            self._maybe_save_caches()

    def _delete(self, ids: list[str] | None, where: Filter | None) -> int:
        with self._rw.write():
            self._check_writable()
            if ids is None:
                assert where is not None
                rows = np.flatnonzero(self._candidates(where)).tolist()
                targets = [self._records.ids[row] for row in rows]
            else:
                targets = list(dict.fromkeys(i for i in ids if i in self._records.row_of))
            if not targets:
                return 0
            clean = [t for t in targets if t is not None]
            db = self._files.db
            if db is not None:
                with db.write() as conn:
                    db.delete(conn, clean)
                self._unsaved_bytes += sum(map(len, clean))
            deleted = self._apply_delete(clean)
            self._maybe_save_caches()
            return deleted

    def _maybe_save_caches(self) -> None:
        """Save the caches once the writes since they were saved have grown large."""
        if self._files.db is None:
            return
        table_bytes = self._table.n * self.dimensions * 4
        if self._unsaved_bytes >= self._compact_after and 2 * self._unsaved_bytes >= table_bytes:
            self._save_caches()

    def _apply_upsert(
        self, ids: list[str], vectors: Vectors, texts: list[str | None], metadata: list[Metadata]
    ) -> None:
        self._masks.clear()
        old, old_rows, new = self._records.write(ids, texts, metadata)
        if old:
            rows = np.array(old_rows, np.int64)
            self._table.write(rows, vectors[old])
            self._index.added(rows, vectors[old])
        if len(new):
            first = self._table.n
            added = vectors if not old else vectors[list(new)]
            self._table.append(added)
            self._index.added(np.arange(first, self._table.n, dtype=np.int64), added)

    def _apply_delete(self, ids: list[str]) -> int:
        self._masks.clear()
        rows = self._records.delete(ids)
        killed = np.array(rows, np.int64)
        self._table.kill(killed)
        self._index.removed(killed)
        if self._table.n - self._table.live > max(_VACUUM_FLOOR, self._table.live):
            self._vacuum()
        return len(rows)

    def _vacuum(self) -> None:
        """Drop tombstones in memory, keeping the relative order of live rows."""
        if self._table.live == self._table.n:
            return
        self._masks.clear()
        renumbered = self._table.compact()
        self._records = self._records.keep(renumbered.tolist())
        self._index.renumbered(renumbered)

    # -- reads --------------------------------------------------------------------------------

    def _get(self, ids: list[str]) -> list[Record]:
        with self._rw.read():
            self._check_open()
            rows = self._records.rows(ids)
            vectors = self._index.vectors(np.array(rows, np.int64))
            return self._records.records(ids, rows, vectors)

    def _count(self, where: Filter | None) -> int:
        with self._rw.read():
            self._check_open()
            if where is None:
                return self._table.live
            return int(np.count_nonzero(self._candidates(where)))

    def _candidates(self, where: Filter) -> Mask:
        """Live rows matching ``where`` (read-only; cached until the next write)."""
        n = self._table.n
        return self._masks.get(
            where, lambda: self._records.matching(where, n) & self._table.live_mask()
        )

    def _search(self, queries: Vectors, k: int, where: Filter | None) -> list[list[Hit]]:
        queries = prepare_queries(queries, self.metric)
        with self._rw.read():
            self._check_open()
            mask = None if where is None else self._candidates(where)
            records = self._records
            return [
                records.hits(rows.tolist(), scores.tolist())
                for rows, scores in self._index.search(queries, k, mask)
            ]
