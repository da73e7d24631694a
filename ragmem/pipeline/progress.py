"""Progress of an ingestion over the whole run: reading the first files, then indexing chunks.

Files are read and chunked while earlier chunks are embedded and written, so the
``indexing`` stage's total is extrapolated from the files chunked so far until all are.

``progress=True`` draws one line on stderr (redrawn in place on a terminal, every tenth
of the work otherwise); a callable receives a ``Progress`` after each step, to drive a
bar of your own.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Progress", "ProgressLike", "ProgressReporter"]


@dataclass(frozen=True)
class Progress:
    """One step of an ingestion.

    Attributes:
        stage: ``"chunking"`` (reading and splitting the first files; unit ``files``) or
            ``"indexing"`` (embedding and writing, while later files are read; unit ``chunks``).
        done: units finished in this stage.
        total: units in this stage (while files are still being read, an estimate).
        unit: ``"files"`` or ``"chunks"``.
        elapsed: seconds since the stage started.
    """

    stage: str
    done: int
    total: int
    unit: str
    elapsed: float

    @property
    def rate(self) -> float:
        """Units per second so far (0 before the first one)."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, or None before anything finished."""
        if self.done == 0 or self.elapsed <= 0:
            return None
        return (self.total - self.done) / self.rate

    def line(self) -> str:
        """One line for people: ``indexing 120/400 chunks, 35.2 chunks/s, ETA 0:08``."""
        eta = "?" if self.eta is None else _clock(self.eta)
        percent = 100 * self.done // self.total if self.total else 100
        return (
            f"{self.stage} {self.done:,}/{self.total:,} {self.unit} ({percent}%), "
            f"{self.rate:,.1f} {self.unit}/s, ETA {eta}"
        )


ProgressLike = bool | Callable[[Progress], None]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressReporter:
    """Times the stages of one run and hands each step to the callback or the stderr line."""

    def __init__(self, progress: ProgressLike) -> None:
        if progress is not None and not isinstance(progress, bool) and not callable(progress):
            from ragmem.errors import InvalidInputError

            raise InvalidInputError(
                f"progress must be True, False or a callable, got {type(progress).__name__}"
            )
        self._callback = progress if callable(progress) else None
        self._draw = progress is True
        self._tty = self._draw and sys.stderr.isatty()
        self._stage = ""
        self._started = 0.0
        self._last_tenth = -1

    def start(self, stage: str, total: int, unit: str) -> None:
        """Begin a stage of ``total`` units."""
        self._stage, self._started, self._last_tenth = stage, time.perf_counter(), -1
        self.step(0, total, unit)

    def step(self, done: int, total: int, unit: str) -> None:
        """Report ``done`` of ``total`` units of the current stage."""
        event = Progress(self._stage, done, total, unit, time.perf_counter() - self._started)
        if self._callback is not None:
            self._callback(event)
        if not self._draw or total == 0:
            return
        if self._tty:
            end = "\n" if done >= total else ""
            os.write(2, f"\r\x1b[K{event.line()}{end}".encode())
            return
        tenth = 10 * done // total
        if tenth != self._last_tenth and (done == 0 or tenth > self._last_tenth):
            self._last_tenth = tenth
            os.write(2, f"{event.line()}\n".encode())
