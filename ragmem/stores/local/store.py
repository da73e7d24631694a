"""LocalVectorStore: the built-in numpy store (exact search, columnar filters, crash-safe files)."""

from __future__ import annotations

import functools
import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ragmem.columns import MetadataColumns
from ragmem.errors import ConfigurationError, CorruptIndexError, NotFoundError, StorageError
from ragmem.stores.base import VectorStore
from ragmem.stores.local import snapshot as snap
from ragmem.stores.local.flat import FlatIndex, Ranked, prepare_queries
from ragmem.stores.local.hits import EMPTY, copy_metadata, make_hits, stored_metadata
from ragmem.stores.local.indexes import IndexKind, make_index
from ragmem.stores.local.locks import ProcessLock, ReadWriteLock
from ragmem.stores.local.masks import MaskCache
from ragmem.stores.local.quantized import CodeDtype
from ragmem.stores.local.table import VectorTable
from ragmem.stores.local.wal import WriteAheadLog, create_log, read_log
from ragmem.types import Hit, Metadata, Metric, Record, Vectors

if TYPE_CHECKING:
    from ragmem.filters import Filter

__all__ = ["LocalVectorStore"]

Mask = npt.NDArray[np.bool_]
_LOCK_FILE = "LOCK"
# In memory, tombstones are dropped once they outnumber live rows (and this floor).
_VACUUM_FLOOR = 1024


class _Files:
    """Open file handles, released by ``close`` or when the store is garbage collected."""

    def __init__(self) -> None:
        self.log: WriteAheadLog | None = None
        self.lock: ProcessLock | None = None

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None


class LocalVectorStore(VectorStore):
    """The built-in vector store: numpy exact search with columnar metadata filters.

    Rows are kept in insertion order (a replaced id keeps its row), which is how
    ties in score are broken. With ``path`` the store lives in that directory: every
    ``upsert`` and ``delete`` is appended to a write-ahead log and fsync'd before it
    returns, and the log is folded into a checksummed snapshot from time to time, so
    acknowledged writes survive a crash at any instant. One process at a time may
    open a directory for writing; any number may open it ``read_only`` (they see the
    state as of opening). Safe to share between threads (many readers, one writer).

    Args:
        dimensions: width of every vector.
        metric: ``"cosine"`` (default), ``"dot"`` or ``"l2"``.
        path: directory of a persistent store (created when missing); in memory if None.
        read_only: open an existing store without taking the write lock; writes raise.
        lock_timeout: seconds to wait for another process's write lock before raising
            StoreLockedError (0 fails at once, ``math.inf`` waits for ever).
        compact_after: write-ahead log size in bytes past which a write first folds the
            log into a new snapshot (only when the log is also at least half the
            snapshot's size, so compaction cost stays proportional to the writes).
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
        self._index = self._make_index()
        self._ids: list[str | None] = []
        self._texts: list[str | None] = []
        self._metadata: list[Metadata] = []
        self._slot_of: dict[str, int] = {}
        self._columns = MetadataColumns()
        self._masks = MaskCache()
        self._closed = False
        self._manifest: snap.Manifest | None = None
        self._files = _Files()
        weakref.finalize(self, self._files.close)
        if self.path is not None:
            self._open(self.path, lock_timeout)

    def _make_index(self) -> FlatIndex:
        """The index searches go through (flat, quantized or HNSW, over the table)."""
        index: FlatIndex = self._new_index(self._table)
        return index

    def __len__(self) -> int:
        return len(self._slot_of)

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return f"LocalVectorStore(dimensions={self.dimensions}, metric={self.metric!r}{where})"

    # -- opening and closing ------------------------------------------------------------------

    def _open(self, directory: Path, lock_timeout: float) -> None:
        if self.read_only:
            self._open_read_only(directory)
            return
        if not directory.exists():
            directory.mkdir(parents=True)
            snap.fsync_dir(directory.parent)  # the new directory's entry must be durable too
        self._files.lock = ProcessLock(directory / _LOCK_FILE, timeout=lock_timeout)
        try:
            manifest = snap.read_manifest(directory)
            if manifest is None:
                manifest = self._create(directory)
            self._check_config(manifest)
            snap.remove_stale_files(directory, manifest)
            valid_bytes = self._load(directory, manifest)
            self._files.log = WriteAheadLog(directory / manifest.wal, valid_bytes)
        except BaseException:
            self._files.close()
            raise
        self._manifest = manifest

    def _open_read_only(self, directory: Path) -> None:
        # A writer may compact (and delete the files a manifest named) while we read;
        # a newer manifest then explains the missing file, so read again.
        for _attempt in range(5):
            manifest = snap.read_manifest(directory)
            if manifest is None:
                raise NotFoundError([str(directory)], what="store")
            self._check_config(manifest)
            try:
                self._load(directory, manifest)
            except CorruptIndexError:
                if snap.read_manifest(directory) == manifest:
                    raise
                self._reset_memory()
                continue
            self._manifest = manifest
            return
        raise StorageError(f"{directory} kept changing while it was being read")

    def _create(self, directory: Path) -> snap.Manifest:
        others = [
            e.name
            for e in os.scandir(directory)
            if e.name != _LOCK_FILE and not snap.is_own_file(e.name)
        ]
        if others:
            raise ConfigurationError(
                f"{directory} holds no ragmem store and is not empty ({sorted(others)[:5]})"
            )
        generation = 1
        # Only a crash while creating the store leaves files without a manifest, and
        # then they are generation 1 with an empty log. Anything else means the
        # manifest of a store with data was lost: refuse rather than start empty.
        log = directory / f"wal-{generation:010d}.log"
        for entry in os.scandir(directory):
            stray = (
                snap.is_own_file(entry.name)
                and entry.name != snap.MANIFEST + ".tmp"
                and f"{generation:010d}" not in entry.name
            )
            if stray or (entry.path == str(log) and entry.stat().st_size > snap.LOG_HEADER_SIZE):
                raise CorruptIndexError(directory / snap.MANIFEST, "file is missing")
        vectors, records = snap.write_snapshot(
            directory, generation, np.empty((self.dimensions, 0), np.float32), [], [], []
        )
        manifest = snap.Manifest(generation, self.dimensions, self.metric, 0, vectors, records)
        create_log(directory / manifest.wal, generation)
        snap.write_manifest(directory, manifest)
        return manifest

    def _check_config(self, manifest: snap.Manifest) -> None:
        if manifest.dimensions != self.dimensions or manifest.metric != self.metric:
            raise ConfigurationError(
                f"store at {self.path} has dimensions={manifest.dimensions}, "
                f"metric={manifest.metric!r}; opened with dimensions={self.dimensions}, "
                f"metric={self.metric!r}"
            )

    def _load(self, directory: Path, manifest: snap.Manifest) -> int:
        """Load snapshot and log into memory; returns the length of the log's valid prefix."""
        self._table.reserve(manifest.rows)
        loaded = snap.read_snapshot(directory, manifest, self._table.matrix)
        if len(set(loaded.ids)) != len(loaded.ids):
            raise CorruptIndexError(directory / manifest.records.name, "duplicate ids")
        self._table.loaded(manifest.rows)
        # before the log replays, so the replay updates a graph loaded for the snapshot
        self._index.load(directory, manifest.generation)
        self._ids = list(loaded.ids)
        self._texts = loaded.texts
        self._metadata = [stored_metadata(m) for m in loaded.metadata]
        self._slot_of = {id_: row for row, id_ in enumerate(loaded.ids)}
        for row, meta in enumerate(self._metadata):
            if meta:
                self._columns.set(row, meta)
        ops, valid_bytes = read_log(directory / manifest.wal, manifest.generation, self.dimensions)
        for op in ops:
            if op.op == "upsert":
                assert op.vectors is not None
                assert op.texts is not None
                assert op.metadata is not None
                self._apply_upsert(op.ids, op.vectors, op.texts, op.metadata)
            else:
                self._apply_delete(op.ids)
        return valid_bytes

    def _reset_memory(self) -> None:
        self._table = VectorTable(self.dimensions)
        self._index = self._make_index()
        self._ids, self._texts, self._metadata = [], [], []
        self._slot_of = {}
        self._columns = MetadataColumns()
        self._masks.clear()

    def close(self) -> None:
        """Release the log and the write lock; the store is unusable afterwards."""
        with self._rw.write():
            self._closed = True
            self._files.close()

    def __enter__(self) -> LocalVectorStore:
        return self

    def compact(self) -> None:
        """Fold the write-ahead log into a new snapshot now and drop deleted rows.

        Writes do this on their own as the log grows; call it before copying the
        directory, or after deleting much of the store to give the space back.
        """
        with self._rw.write():
            self._check_writable()
            if self._files.log is not None:
                self._compact()
            else:
                self._vacuum()

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
        with self._rw.write():
            self._check_writable()
            log = self._log_for_write()
            if log is not None:
                log.append_upsert(ids, vectors, texts, metadata)
            self._apply_upsert(ids, vectors, texts, metadata)

    def _delete(self, ids: list[str] | None, where: Filter | None) -> int:
        with self._rw.write():
            self._check_writable()
            if ids is None:
                assert where is not None
                rows = np.flatnonzero(self._candidates(where)).tolist()
                targets = [self._ids[row] for row in rows]
            else:
                targets = list(dict.fromkeys(i for i in ids if i in self._slot_of))
            if not targets:
                return 0
            clean = [t for t in targets if t is not None]
            log = self._log_for_write()
            if log is not None:
                log.append_delete(clean)
            return self._apply_delete(clean)

    def _log_for_write(self) -> WriteAheadLog | None:
        """The log to append to, compacting first when it has grown large."""
        log, manifest = self._files.log, self._manifest
        if log is None or manifest is None:
            return None
        snapshot_bytes = manifest.vectors.size + manifest.records.size
        if log.size >= self._compact_after and 2 * log.size >= snapshot_bytes:
            self._compact()
        return self._files.log

    def _apply_upsert(
        self, ids: list[str], vectors: Vectors, texts: list[str | None], metadata: list[Metadata]
    ) -> None:
        self._masks.clear()
        slot_of = self._slot_of
        old = [i for i, id_ in enumerate(ids) if id_ in slot_of]
        if old:
            rows = np.array([slot_of[ids[i]] for i in old], np.int64)
            self._table.write(rows, vectors[old])
            for i, row in zip(old, rows.tolist()):
                self._texts[row] = texts[i]
                self._metadata[row] = stored_metadata(metadata[i])
                self._columns.set(row, metadata[i])
            self._index.added(rows)
        new = [i for i, id_ in enumerate(ids) if id_ not in slot_of] if old else range(len(ids))
        if len(new):
            first = self._table.n
            self._table.append(vectors if not old else vectors[list(new)])
            for offset, i in enumerate(new):
                row = first + offset
                slot_of[ids[i]] = row
                self._ids.append(ids[i])
                self._texts.append(texts[i])
                self._metadata.append(stored_metadata(metadata[i]))
                if metadata[i]:
                    self._columns.set(row, metadata[i])
            self._index.added(np.arange(first, self._table.n, dtype=np.int64))

    def _apply_delete(self, ids: list[str]) -> int:
        self._masks.clear()
        rows = sorted({self._slot_of.pop(id_) for id_ in ids if id_ in self._slot_of})
        for row in rows:
            self._ids[row] = None
            self._texts[row] = None
            self._metadata[row] = EMPTY
            self._columns.clear(row)
        killed = np.array(rows, np.int64)
        self._table.kill(killed)
        self._index.removed(killed)
        if self._files.log is None and self._table.n - self._table.live > max(
            _VACUUM_FLOOR, self._table.live
        ):
            self._vacuum()
        return len(rows)

    def _vacuum(self) -> None:
        """Drop tombstones in memory, keeping the relative order of live rows."""
        if self._table.live == self._table.n:
            return
        self._masks.clear()
        renumbered = self._table.compact()
        kept = renumbered.tolist()
        self._ids = [self._ids[row] for row in kept]
        self._texts = [self._texts[row] for row in kept]
        self._metadata = [self._metadata[row] for row in kept]
        self._slot_of = {id_: row for row, id_ in enumerate(self._ids) if id_ is not None}
        self._columns = MetadataColumns.of_rows(self._metadata)
        self._index.renumbered(renumbered)

    def _compact(self) -> None:
        directory, manifest = self.path, self._manifest
        assert directory is not None
        assert manifest is not None
        self._vacuum()
        generation = manifest.generation + 1
        ids = [i for i in self._ids if i is not None]
        vectors, records = snap.write_snapshot(
            directory, generation, self._table.view(), ids, self._texts, self._metadata
        )
        self._index.save(directory, generation)
        new = snap.Manifest(
            generation, self.dimensions, self.metric, self._table.n, vectors, records
        )
        create_log(directory / new.wal, generation)
        snap.write_manifest(directory, new)  # the commit point
        old_log = self._files.log
        self._files.log = WriteAheadLog(directory / new.wal, (directory / new.wal).stat().st_size)
        if old_log is not None:
            old_log.close()
        self._manifest = new
        snap.remove_stale_files(directory, new)

    # -- reads --------------------------------------------------------------------------------

    def _get(self, ids: list[str]) -> list[Record]:
        with self._rw.read():
            self._check_open()
            missing = [i for i in ids if i not in self._slot_of]
            if missing:
                raise NotFoundError(missing)
            rows = np.array([self._slot_of[i] for i in ids], np.int64)
            vectors = self._table.rows(rows)
            return [
                Record(
                    id=id_,
                    vector=vector,
                    text=self._texts[row],
                    metadata=copy_metadata(self._metadata[row]),
                )
                for id_, row, vector in zip(ids, rows.tolist(), vectors)
            ]

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
            where, lambda: self._columns.evaluate(where, n) & self._table.live_mask()
        )

    def _search(self, queries: Vectors, k: int, where: Filter | None) -> list[list[Hit]]:
        queries = prepare_queries(queries, self.metric)
        with self._rw.read():
            self._check_open()
            mask = None if where is None else self._candidates(where)
            ids, texts, metadata = self._ids, self._texts, self._metadata
            return [
                make_hits(rows.tolist(), scores.tolist(), ids, texts, metadata)
                for rows, scores in self._rank(queries, k, mask)
            ]

    def _rank(self, queries: Vectors, k: int, mask: Mask | None) -> list[Ranked]:
        """The one search seam: best ``k`` rows per query among ``mask`` (None: all live).

        Every search goes through here, so another index (HNSW, quantized) only has to
        provide ``search(queries, k, mask)`` and the row notifications FlatIndex has.
        """
        return self._index.search(queries, k, mask)
