"""Where a text may be cut: boundary levels, layouts, and grapheme-safe character cuts."""

from __future__ import annotations

import bisect
import re
import unicodedata
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ragmem.types import Metadata

__all__ = ["ArrayLevel", "Layout", "Level", "PatternLevel", "first_non_space", "nudge"]

_NON_SPACE = re.compile(r"\S")


def first_non_space(text: str, pos: int) -> int:
    """Index of the first non-whitespace character at or after ``pos`` (``len(text)`` if none)."""
    m = _NON_SPACE.search(text, pos)
    return m.start() if m else len(text)


class Level(Protocol):
    """One kind of boundary (paragraph, line, word...), strongest kinds first in a Layout."""

    def last(self, text: str, lo: int, hi: int) -> int:
        """The last cut position ``p`` with ``lo < p <= hi``, or -1 if there is none."""
        ...


class PatternLevel:
    """Cut positions where a regular expression matches (at the match start, or its end).

    Example:
        >>> PatternLevel("\\n").last("a\\nb\\nc", 0, 4)
        3
    """

    def __init__(self, pattern: str | re.Pattern[str], *, at: Literal["start", "end"] = "start"):
        source = pattern.pattern if isinstance(pattern, re.Pattern) else re.escape(pattern)
        flags = pattern.flags if isinstance(pattern, re.Pattern) else 0
        self._probe = re.compile(source, flags)
        # greedy ".*" backtracks from the window end, so the first hit is the last match
        self._last = re.compile(f"(?s:.*)({source})", flags)
        self._at_end = at == "end"

    def last(self, text: str, lo: int, hi: int) -> int:
        # one character past the window, so a separator starting exactly at hi is seen
        stop = min(len(text), hi + 1)
        # a forward search fails fast (literal prefix scan) when the window has no match
        if self._probe.search(text, lo, stop) is None:
            return -1
        m = self._last.match(text, lo, stop)
        if m is None:
            return -1
        p = m.end(1) if self._at_end else m.start(1)
        return p if lo < p <= hi else -1


class ArrayLevel:
    """Cut positions given up front as a sorted integer array."""

    def __init__(self, positions: Iterable[int]) -> None:
        self.positions = sorted(set(positions))

    def last(self, text: str, lo: int, hi: int) -> int:
        # bisect on a list: a scalar numpy searchsorted costs several times more per call
        i = bisect.bisect_right(self.positions, hi) - 1
        if i >= 0 and self.positions[i] > lo:
            return self.positions[i]
        return -1


class Layout:
    """Where a chunker may cut one document; subclasses add structure.

    Attributes:
        levels: boundary kinds, strongest first; a window is cut at the last boundary
            of the strongest kind it contains, else at the unit limit.
        hard: sorted positions where a chunk must end (semantic breakpoints).
        quiet: sorted, disjoint ``(start, end)`` spans where no level may cut (between
            a heading and its text); only the unit limit itself can cut there.
    """

    def __init__(
        self,
        levels: Sequence[Level] = (),
        hard: Sequence[int] = (),
        quiet: Sequence[tuple[int, int]] = (),
    ) -> None:
        self.levels = list(levels)
        self.hard = sorted(set(hard))
        self.quiet = sorted(quiet)
        self._quiet_starts = [q[0] for q in self.quiet]

    def is_quiet(self, pos: int) -> bool:
        """Whether ``pos`` lies inside a quiet span."""
        i = bisect.bisect_right(self._quiet_starts, pos) - 1
        return i >= 0 and pos < self.quiet[i][1]

    def prefix(self, start: int) -> tuple[int, int] | None:
        """A span of the text repeated before a chunk starting at ``start`` (table headers)."""
        return None

    def metadata(self, own: int, end: int) -> Metadata:
        """Extra metadata for the chunk whose own part is ``[own, end)``."""
        return {}


def _extends_previous(ch: str) -> bool:
    """True for characters that belong to the grapheme before them (marks, ZWJ, selectors)."""
    o = ord(ch)
    return (
        unicodedata.combining(ch) != 0
        or o == 0x200D
        or 0xFE00 <= o <= 0xFE0F
        or 0x1F3FB <= o <= 0x1F3FF
        or 0xE0020 <= o <= 0xE007F
        or 0xE0100 <= o <= 0xE01EF
        or unicodedata.category(ch) in ("Mn", "Me", "Mc")
    )


def nudge(text: str, lo: int, p: int) -> int:
    """Move a character-level cut back so it does not split a grapheme, when possible."""

    def inside(q: int) -> bool:
        return _extends_previous(text[q]) or text[q - 1] == "\u200d"

    if p >= len(text) or not inside(p):
        return p
    q = p - 1
    while q > lo and p - q < 32 and inside(q):
        q -= 1
    return q if q > lo and not inside(q) else p
