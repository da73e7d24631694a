"""MarkdownChunker: follows the heading tree, keeps code blocks and tables whole."""

from __future__ import annotations

import bisect
import re
from typing import TYPE_CHECKING

import numpy as np

from ragmem.chunking.base import ArrayLevel, Chunker, Layout, PatternLevel, first_non_space
from ragmem.chunking.recursive import PARAGRAPH
from ragmem.chunking.sentences import SentenceLevel

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy.typing as npt

    from ragmem.chunking.base import Level
    from ragmem.types import Metadata

__all__ = ["MarkdownChunker"]

_EOL = r"(?=\r|\n|\Z)"
_HEADING = re.compile(rf"^[ ]{{0,3}}(#{{1,6}})(?=[ \t]|{_EOL})([^\r\n]*)", re.M)
_FENCE = re.compile(rf"^[ ]{{0,3}}(`{{3,}}|~{{3,}})([^\r\n]*){_EOL}", re.M)
_CELL = r"[ \t]*:?-+:?[ \t]*"
_DELIMITER = re.compile(
    rf"^[ ]{{0,3}}(?:\|?{_CELL}(?:\|{_CELL})+\|?|\|{_CELL}\|)[ \t]*{_EOL}", re.M
)
_ROWS = re.compile(r"(?:(?:\r\n|\r|\n)[^\r\n]*\|[^\r\n]*)*")


class _MarkdownLayout(Layout):
    def __init__(
        self,
        levels: list[Level],
        headings: list[tuple[int, int, int, str]],
        tables: list[tuple[int, int, int]],
        quiet: npt.NDArray[np.int64],
    ) -> None:
        super().__init__(levels, quiet=[(a, b) for a, b in quiet.tolist()])
        self._hpos = [h[0] for h in headings]
        self._hlev = [h[2] for h in headings]
        self._paths: list[list[tuple[int, str]]] = []
        stack: list[tuple[int, str]] = []
        for _, _, level, title in headings:
            stack = [*(e for e in stack if e[0] < level), (level, title)]
            self._paths.append(stack)
        self._tables = tables
        self._body_starts = [t[1] for t in tables]

    def prefix(self, start: int) -> tuple[int, int] | None:
        i = bisect.bisect_right(self._body_starts, start) - 1
        if i >= 0:
            header_start, body_start, end = self._tables[i]
            if body_start <= start < end:
                return header_start, body_start
        return None

    def metadata(self, own: int, end: int) -> Metadata:
        i = bisect.bisect_right(self._hpos, own)
        path = self._paths[i - 1] if i > 0 else []
        j = bisect.bisect_left(self._hpos, end)
        if j > i:  # the chunk spans later headings: keep the part of the path they share
            top = min(self._hlev[i:j])
            path = [e for e in path if e[0] < top]
        return {"headings": [title for _, title in path]}


class MarkdownChunker(Chunker):
    """Chunks markdown along its heading tree; each chunk carries its heading path.

    A window is cut before the last top-level heading it contains, else the last
    second-level heading, and so on down to six levels, then between blocks
    (paragraphs, lists, fenced code, tables), then at lines, sentences, words and
    characters. So whole sections and sibling subsections are merged up to the
    limit. A heading is never separated from the text that follows it.

    Fenced code blocks (backticks or tildes, per CommonMark) and tables are never cut
    unless the block alone exceeds ``size - overlap``; then code is cut at lines and
    a table at rows, and every continuation chunk of a table starts with the
    table's header and delimiter rows. Such a chunk's ``text`` is
    ``text[header_start:header_end] + text[start:end]`` (both offsets are in its
    metadata); ``start``/``end`` cover only the rows taken from the source.

    ``metadata["headings"]`` lists the titles of the sections containing the chunk's
    own part, outermost first (for a chunk spanning sibling sections: their
    parent's path). Only ATX headings (``#``) are recognised.

    Example:
        >>> md = "# Guide\\n\\nIntro.\\n\\n## Install\\n\\nRun pip.\\n"
        >>> [(c.text, c.metadata["headings"]) for c in MarkdownChunker(size=20).chunk(md)]
        [('# Guide\\n\\nIntro.', ['Guide']), ('## Install\\n\\nRun pip.', ['Guide', 'Install'])]
    """

    _whole_if_fits = True

    def _whole_metadata(self, text: str, metadata: Metadata, own: int, end: int) -> Metadata:
        # a text that fits whole needs only its headings, not the full layout
        if "#" not in text:
            return {"headings": []}
        _, in_fence = _fence_index(text)
        return _MarkdownLayout(
            [], _headings(text, in_fence), [], np.empty((0, 2), np.int64)
        ).metadata(own, end)

    def _layout(self, text: str, metadata: Metadata) -> Layout:
        fences, in_fence = _fence_index(text)
        headings = _headings(text, in_fence)
        tables = _tables(text, in_fence)

        atomic = sorted([*fences, *((t[0], t[2]) for t in tables)])
        a_starts = np.array([a[0] for a in atomic], dtype=np.int64)
        a_ends = np.array([a[1] for a in atomic], dtype=np.int64)
        # from the end of a heading line to the start of its text (inclusive, unless a
        # block that fits whole starts there): no cut may fall there
        room = self.size - self.overlap
        block_at = {first_non_space(text, a): b for a, b in atomic}
        quiet_spans = []
        for h in headings:
            content = first_non_space(text, h[1])
            block_end = block_at.get(content)
            # a block that fits may start a chunk of its own rather than be split
            whole = block_end is not None and self.count(text[content:block_end]) <= room
            quiet_spans.append([h[1], content if whole else content + 1])
        quiet = np.array(quiet_spans, dtype=np.int64).reshape(-1, 2)

        blank = np.array([m.start() for m in PARAGRAPH.finditer(text)], dtype=np.int64)
        blank = blank[~_in_spans(blank, quiet)]
        # blank lines inside code blocks and tables are not block breaks
        blank = blank[~_in_spans(blank, np.stack([a_starts, a_ends], axis=1))]
        blocks = np.concatenate([blank, a_starts, a_ends]).tolist()

        levels: list[Level] = [
            ArrayLevel([h[0] for h in headings if h[2] == depth])
            for depth in sorted({h[2] for h in headings})
        ]
        levels += [ArrayLevel(blocks), PatternLevel(re.compile(r"[\r\n]")), SentenceLevel()]
        levels.append(PatternLevel(re.compile(r"\s")))
        return _MarkdownLayout(levels, headings, tables, quiet)


def _in_spans(
    positions: npt.NDArray[np.int64], spans: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Which positions fall inside one of the sorted, disjoint ``[start, end)`` spans."""
    if not len(spans) or not len(positions):
        return np.zeros(len(positions), dtype=bool)
    i = np.searchsorted(spans[:, 0], positions, side="right") - 1
    inside: npt.NDArray[np.bool_] = (i >= 0) & (positions < spans[np.maximum(i, 0), 1])
    return inside


def _fence_index(text: str) -> tuple[list[tuple[int, int]], Callable[[int], bool]]:
    """The fenced code blocks, and a test for whether a position lies inside one."""
    fences = _fences(text)
    fence_starts = [f[0] for f in fences]

    def in_fence(pos: int) -> bool:
        i = bisect.bisect_right(fence_starts, pos) - 1
        return i >= 0 and pos < fences[i][1]

    return fences, in_fence


def _headings(text: str, in_fence: Callable[[int], bool]) -> list[tuple[int, int, int, str]]:
    """(line start, line end, level, title) of each ATX heading outside code blocks."""
    headings = []
    for m in _HEADING.finditer(text):
        if not in_fence(m.start()):
            title = m.group(2).strip()
            title = re.sub(r"[ \t]+#+$", "", title).strip() if title != "#" * len(title) else ""
            headings.append((m.start(), m.end(), len(m.group(1)), title))
    return headings


def _fences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each fenced code block; an unclosed fence runs to the end."""
    out = []
    opened: tuple[int, str] | None = None
    for m in _FENCE.finditer(text):
        marker, info = m.group(1), m.group(2)
        if opened is None:
            if marker[0] == "`" and "`" in info:
                continue  # not a fence: backtick fences have no backticks in their info
            opened = (m.start(), marker)
        elif marker[0] == opened[1][0] and len(marker) >= len(opened[1]) and not info.strip():
            out.append((opened[0], m.end()))
            opened = None
    if opened is not None:
        out.append((opened[0], len(text)))
    return out


def _tables(text: str, in_fence: Callable[[int], bool]) -> list[tuple[int, int, int]]:
    """(header start, body start, end) of each pipe table outside code blocks."""
    out: list[tuple[int, int, int]] = []
    for m in _DELIMITER.finditer(text):
        start = m.start()
        if start == 0 or in_fence(start):
            continue
        brk = start - 1  # the line break ending the header row
        if brk > 0 and text[brk - 1 : brk + 1] == "\r\n":
            brk -= 1
        # the header row's start: after the last line break before it (looking for a
        # lone \r only within that line, not back through the whole text)
        newline = text.rfind("\n", 0, brk)
        header_start = max(newline, text.rfind("\r", newline + 1, brk)) + 1
        header = text[header_start:brk]
        if "|" not in header or not header.strip() or (out and header_start < out[-1][2]):
            continue
        rows = _ROWS.match(text, m.end())
        end = rows.end() if rows else m.end()
        body_start = m.end()
        if body_start < len(text):
            body_start += 2 if text.startswith("\r\n", body_start) else 1
        out.append((header_start, body_start, end))
    return out
