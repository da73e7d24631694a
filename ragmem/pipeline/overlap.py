"""Run the stages of an ingestion at once: produce in one thread, transform in another.

Ingestion reads, parses and chunks (Python, mostly holding the GIL), embeds (the model
releases the GIL while it runs) and writes (SQLite and file I/O). Run one after the
other, the model waits for the rest; run as a pipeline of bounded queues, reading and
writing hide behind embedding while memory holds at most a few batches in flight.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable

__all__ = ["overlapped"]

T = TypeVar("T")
U = TypeVar("U")

# how often a blocked thread looks whether the run was stopped
_POLL_SECONDS = 0.05


class _End:
    """The end of a stream: normal (``error`` None) or the exception that ended it."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class _Channel(Generic[T]):
    """A bounded queue whose ends give up once the run is stopped."""

    def __init__(self, depth: int, stop: threading.Event) -> None:
        self._queue: queue.Queue[T | _End] = queue.Queue(depth)
        self._stop = stop

    def put(self, item: T | _End) -> bool:
        """Hand ``item`` on; False when the run was stopped first."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> T | _End:
        """The next item, or an ``_End`` once the run was stopped."""
        while not self._stop.is_set():
            try:
                return self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
        return _End()


def overlapped(
    items: Iterable[T], transform: Callable[[T], U], *, depth: int = 2
) -> Generator[tuple[T, U], None, None]:
    """Yield ``(item, transform(item))`` in order, computing ahead in two threads.

    One thread iterates ``items``, another applies ``transform``; each hands its results
    on through a queue of ``depth`` entries, so at most about ``2 * depth + 3`` items
    exist at once, however long ``items`` is. An exception in either thread is raised
    here, in the caller's thread; when the caller stops early (an exception of its own,
    or closing the generator), both threads stop after their current item.

    Example:
        >>> [pair for pair in overlapped(range(3), lambda n: n * n)]
        [(0, 0), (1, 1), (2, 4)]
    """
    stop = threading.Event()
    produced: _Channel[T] = _Channel(depth, stop)
    done: _Channel[tuple[T, U]] = _Channel(depth, stop)

    def produce() -> None:
        try:
            for item in items:
                if not produced.put(item):
                    return
        except BaseException as exc:  # handed to the caller, who raises it
            produced.put(_End(exc))
            return
        produced.put(_End())

    def work() -> None:
        while True:
            item = produced.get()
            if isinstance(item, _End):
                done.put(item)
                return
            try:
                result = transform(item)
            except BaseException as exc:  # handed to the caller, who raises it
                done.put(_End(exc))
                return
            if not done.put((item, result)):
                return

    threads = [
        threading.Thread(target=produce, name="ragmem-ingest-read", daemon=True),
        threading.Thread(target=work, name="ragmem-ingest-embed", daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        while True:
            got = done.get()
            if isinstance(got, _End):
                if got.error is not None:
                    raise got.error
                return
            yield got
    finally:
        stop.set()
        for thread in threads:
            thread.join()
