"""Locks for the built-in store: a readers-writer lock for threads, a file lock for processes."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from ragmem.errors import StoreLockedError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["ProcessLock", "ReadWriteLock"]


class ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers (no writer starvation)."""

    def __init__(self) -> None:
        # readers take the bare mutex (a C-level context manager), and reach for the
        # condition only when they must wait or wake a writer
        self._mutex = threading.Lock()
        self._cond = threading.Condition(self._mutex)
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._read_side = _ReadSide(self)

    def read(self) -> _ReadSide:
        """The shared side, as a context manager: ``with lock.read(): ...``."""
        # one reusable object rather than a generator-based context manager per call:
        # a search on an HNSW graph is fast enough for that difference to show
        return self._read_side

    def _acquire_read(self) -> None:
        with self._mutex:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1

    def _release_read(self) -> None:
        with self._mutex:
            self._readers -= 1
            # only a writer ever waits for readers to leave
            if not self._readers and self._writers_waiting:
                self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class ProcessLock:
    """An exclusive lock on ``path`` held while a store is open for writing.

    The operating system drops the lock when the holder exits, even on SIGKILL, so
    a crashed writer never leaves a stale lock behind. Each open file holds its own
    lock, so a second writer in the same process is refused too.
    """

    def __init__(self, path: Path, *, timeout: float = 0.0) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        delay = 0.005
        while not _try_lock(self._fd):
            if time.monotonic() >= deadline:
                os.close(self._fd)
                self._fd = None
                raise StoreLockedError(path.parent)
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.1)

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            try:
                _unlock(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None


class _ReadSide:
    """``with``-able shared side of a ReadWriteLock (stateless, so one serves every thread)."""

    __slots__ = ("_lock",)

    def __init__(self, lock: ReadWriteLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock._acquire_read()

    def __exit__(self, *exc: object) -> None:
        self._lock._release_read()
