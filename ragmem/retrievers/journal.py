"""Incremental saves for the keyword index: a snapshot plus a log of the writes since.

``BM25Retriever.save`` to the file it was last saved to or loaded from appends only the
writes made since (``FILE.log``, the store's checksummed write-ahead log format, one
fsync'd record per write) instead of rewriting the whole index. Loading replays the log
over the snapshot. The log is tied to its snapshot by a generation number:

* a full save writes a snapshot with a new, larger generation, then removes the log; a
  crash in between leaves a log of an older generation, whose writes the new snapshot
  already holds, so it is ignored;
* a torn final record (a crash during an append) was never acknowledged and is dropped;
* any other damage raises ``CorruptIndexError`` naming the log.

A full save happens instead of an append when the log outgrows half the snapshot, or
when the files changed since this object last wrote them (another writer: the last
save then wins whole, as with plain snapshots).
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ragmem.errors import CorruptIndexError, StorageError
from ragmem.retrievers.persist import fsync_dir
from ragmem.stores.local.wal import WriteAheadLog, create_log, read_log

if TYPE_CHECKING:
    from ragmem.stores.local.wal import LogOp
    from ragmem.types import Metadata

__all__ = ["JournalOp", "SavedFiles", "log_path", "new_generation", "read_journal"]

# (op, ids, texts, metadata): "add" carries texts and metadata, "delete" empty lists
JournalOp = tuple[str, list[str], list[str], list["Metadata"]]

_MIN_LOG_BYTES = 1 << 20


def log_path(snapshot: Path) -> Path:
    """The log file that belongs to ``snapshot``."""
    return snapshot.with_name(snapshot.name + ".log")


def _log_generation(log: Path) -> int | None:
    try:
        with open(log, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {log}: {exc}") from exc
    if len(head) < 16:
        raise CorruptIndexError(log, "file header truncated")
    generation: int = struct.unpack_from("<Q", head, 8)[0]
    return generation


def new_generation(snapshot: Path, previous: int = 0) -> int:
    """A generation larger than ``previous`` and than any log lying next to ``snapshot``."""
    return max(time.time_ns(), previous + 1, (_log_generation(log_path(snapshot)) or 0) + 1)


def read_journal(snapshot: Path, generation: int) -> tuple[list[LogOp], int]:
    """The writes logged after the snapshot of ``generation``, and the log's valid length.

    Raises:
        CorruptIndexError: the log is damaged, or claims a generation newer than its snapshot.
    """
    log = log_path(snapshot)
    found = _log_generation(log)
    if found is None or found < generation:
        return [], 0  # none yet, or left over from before the snapshot (already in it)
    if found > generation:
        raise CorruptIndexError(log, f"log is generation {found}, its snapshot {generation}")
    return read_log(log, generation, 0)


def _stat(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, st.st_size


@dataclass
class SavedFiles:
    """What this object last wrote or read: the snapshot, its generation, the log's length."""

    snapshot: Path
    generation: int
    snapshot_stat: tuple[int, int, int]
    log_bytes: int = 0

    @classmethod
    def after_write(cls, snapshot: Path, generation: int) -> SavedFiles:
        """Record a full save, removing the log it supersedes."""
        with contextlib.suppress(FileNotFoundError):
            log_path(snapshot).unlink()
        return cls(snapshot.absolute(), generation, _stat(snapshot))

    @classmethod
    def after_read(cls, snapshot: Path, generation: int, log_bytes: int) -> SavedFiles:
        """Record a load that replayed ``log_bytes`` of the log."""
        return cls(snapshot.absolute(), generation, _stat(snapshot), log_bytes)

    def can_append(self, snapshot: Path) -> bool:
        """True when ``snapshot`` and its log are exactly as this object left them."""
        if snapshot.absolute() != self.snapshot:
            return False
        try:
            if _stat(snapshot) != self.snapshot_stat:
                return False
            log = log_path(snapshot)
            size = log.stat().st_size if log.exists() else 0
        except OSError:
            return False
        limit = max(self.snapshot_stat[2] // 2, _MIN_LOG_BYTES)
        return size == self.log_bytes and size < limit

    def append(self, ops: list[JournalOp]) -> None:
        """Append ``ops`` to the log, each fsync'd before the next."""
        log = log_path(self.snapshot)
        try:
            if self.log_bytes == 0:
                create_log(log, self.generation)
                fsync_dir(log.parent)  # the new file's name must survive a crash too
                self.log_bytes = os.path.getsize(log)
            wal = WriteAheadLog(log, self.log_bytes)
        except OSError as exc:
            raise StorageError(f"cannot write {log}: {exc}") from exc
        try:
            for op, ids, texts, metadata in ops:
                if op == "add":
                    vectors = np.empty((len(ids), 0), np.float32)
                    wal.append_upsert(ids, vectors, list[str | None](texts), metadata)
                else:
                    wal.append_delete(ids)
                self.log_bytes = wal.size
        finally:
            wal.close()
