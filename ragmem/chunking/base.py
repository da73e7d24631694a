"""The Chunker interface and the one cutting loop every chunker shares.

Every chunker takes ``size``, ``overlap`` and ``unit`` and returns ``Chunk`` objects
with exact source offsets. The subclasses only describe *where* a document may be
cut (a ``Layout``: boundary levels, hard breaks, metadata); this module decides
*which* cuts to make, so the guarantees below hold for all of them.

Contract, for a document ``text`` and the chunks ``c[0..n-1]`` it yields:

* **Limit.** ``units(c[i].text) <= size`` for every chunk, measured in ``unit``:
  code points for ``"chars"``, ``tokenizer.count(c[i].text)`` for ``"tokens"``
  (the chunk's own count, so byte-level BPE merges at its edges are covered; with a
  ``space_split`` tokenizer only the edges are tokenized again, see ``Measure.count``).
* **Offsets.** ``c[i].text == text[c[i].start:c[i].end]``. The single exception is a
  markdown table split by rows, whose continuation chunks repeat the table header:
  there ``c.text == text[h0:h1] + text[c.start:c.end]`` with ``h0, h1`` in
  ``metadata["header_start"]`` and ``metadata["header_end"]``.
* **Own parts and gaps.** Each chunk has an *own part* ``[own, end)`` that starts and
  ends with a non-whitespace character. Own parts are disjoint and in order; the
  text between consecutive own parts (and before the first, after the last) is
  whitespace only. So the own parts joined with those whitespace gaps give back
  ``text`` exactly, and ``own`` is the first non-whitespace position at or after the
  previous chunk's ``end``. Empty and whitespace-only texts give no chunks.
* **Overlap.** ``c[0].start == own[0]``. For ``i > 0``, ``c[i].start`` lies ``overlap``
  units before its own part, but never before ``own[i-1]``: ``text[c[i].start:own[i]]``
  holds exactly ``min(overlap, units(text[own[i-1]:own[i]]))`` units. In characters
  this is exact. In tokens, units are the document's own tokens
  (``tokenizer.spans(text)``) lying wholly inside the span, and ``c[i].start`` is a
  token start; when byte-level tokens split one character across that edge, the
  whole character is included (one or more extra tokens of that character). The
  overlap may include the whitespace gap before the own part, and it applies between
  every two consecutive chunks (across headings and semantic breakpoints too). It is
  shortened for a chunk only when the full overlap plus the first token of new text
  would exceed ``size`` (possible only with byte-level tokens and tiny sizes).
* **Deterministic ids**: ``f"{doc_id}#{index}"``.
"""

from __future__ import annotations

import bisect
import hashlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, TypeAdapter

from ragmem.chunking.levels import (
    ArrayLevel,
    Layout,
    Level,
    PatternLevel,
    first_non_space,
    nudge,
)
from ragmem.chunking.measure import Measure
from ragmem.errors import ConfigurationError, InvalidInputError
from ragmem.tokens import Tokenizer
from ragmem.types import Chunk, Document, validate_metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ragmem.types import Metadata

__all__ = [
    "ArrayLevel",
    "Chunker",
    "Layout",
    "Level",
    "PatternLevel",
    "Unit",
    "first_non_space",
]

Unit = Literal["tokens", "chars"]


class Chunker(ABC):
    """Splits documents into chunks of at most ``size`` units with exact offsets.

    Subclasses describe where a text may be cut by returning a ``Layout`` from
    ``_layout``; the cutting, the limit, the overlap and the offsets live here.

    Args:
        size: the limit per chunk, in ``unit``.
        overlap: units each chunk repeats from just before its own part (see the
            module docstring for the exact definition); ``0 <= overlap < size``.
        unit: ``"tokens"`` (needs ``tokenizer``) or ``"chars"`` (code points). Default:
            tokens when a tokenizer is given, else chars.
        tokenizer: any ``ragmem.tokens.Tokenizer`` (its optional ``span_arrays`` and
            ``space_split`` are used when present).

    Chunks carry the document's metadata plus the chunker's own keys (``headings``,
    ``symbols``, ``symbol``, ``header_start``, ``header_end``), which win on a clash.

    Example:
        >>> from ragmem.chunking import RecursiveChunker
        >>> from ragmem.tokens import WhitespaceTokenizer
        >>> chunker = RecursiveChunker(size=4, overlap=1, tokenizer=WhitespaceTokenizer())
        >>> [(c.id, c.text) for c in chunker.chunk("one two three four five six", doc_id="d")]
        [('d#0', 'one two three four'), ('d#1', 'four five six')]
    """

    def __init__(
        self,
        *,
        size: int,
        overlap: int = 0,
        unit: Unit | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        for name, value in (("size", size), ("overlap", overlap)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"{name} must be an int, got {type(value).__name__}")
        if size < 1:
            raise ConfigurationError(f"size must be at least 1, got {size}")
        if not 0 <= overlap < size:
            raise ConfigurationError(
                f"overlap must satisfy 0 <= overlap < size ({size}), got {overlap}"
            )
        if unit is None:
            unit = "tokens" if tokenizer is not None else "chars"
        if unit not in ("tokens", "chars"):
            raise ConfigurationError(f"unit must be 'tokens' or 'chars', got {unit!r}")
        if unit == "tokens":
            if tokenizer is None:
                raise ConfigurationError(
                    "unit='tokens' needs tokenizer=, e.g. ragmem.tokens.WhitespaceTokenizer() "
                    "or the tokenizer of the embedding model; or use unit='chars'"
                )
            if not isinstance(tokenizer, Tokenizer):
                raise ConfigurationError(
                    f"tokenizer must have name, count() and spans(); got {type(tokenizer).__name__}"
                )
        self.size = size
        self.overlap = overlap
        self.unit: Unit = unit
        self.tokenizer = tokenizer if unit == "tokens" else None

    def __repr__(self) -> str:
        tok = f", tokenizer={self.tokenizer.name!r}" if self.tokenizer is not None else ""
        return (
            f"{type(self).__name__}(size={self.size}, overlap={self.overlap}, "
            f"unit={self.unit!r}{tok})"
        )

    # a text that fits whole becomes one chunk without the cutting loop (False when
    # the layout may break a text that fits, as semantic breakpoints do)
    _whole_if_fits = False
    # the layout adds no metadata either, so that case skips building it
    _plain = False

    def _fits_whole(self, text: str, own: int, end: int) -> bool:
        if self.tokenizer is None:
            return end - own <= self.size
        # past ~4 characters per token a text rarely fits: skip this count (the cutting
        # loop still yields a single chunk when it does fit)
        if end - own > 4 * self.size:
            return False
        return self.tokenizer.count(text[own:end]) <= self.size

    def _whole_metadata(self, text: str, metadata: Metadata, own: int, end: int) -> Metadata:
        """Metadata for a text that is one chunk ``[own, end)``; subclasses may shortcut."""
        return self._layout(text, metadata).metadata(own, end)

    @abstractmethod
    def _layout(self, text: str, metadata: Metadata) -> Layout:
        """Describe where ``text`` may be cut (``metadata``: the document's, merged)."""

    def count(self, text: str) -> int:
        """Length of ``text`` in this chunker's unit."""
        return len(text) if self.tokenizer is None else self.tokenizer.count(text)

    def chunk(
        self,
        document: Document | str,
        *,
        doc_id: str | None = None,
        metadata: Metadata | None = None,
    ) -> list[Chunk]:
        """Split one document (or a plain string) into chunks.

        Args:
            document: a ``Document``, or a string (then ``doc_id`` defaults to
                ``"sha256:"`` plus the first 16 hex digits of the text's hash).
            doc_id: overrides the document's id.
            metadata: merged over the document's metadata.

        Raises:
            InvalidInputError: ``document`` is neither a Document nor a string.
            ConfigurationError: in tokens, a single character needs more than ``size`` tokens.
        """
        if isinstance(document, Document):
            text, meta = document.text, dict(document.metadata)
            doc_id = document.id if doc_id is None else doc_id
        elif isinstance(document, str):
            text, meta = document, {}
        else:
            raise InvalidInputError(
                f"chunk() takes a Document or a str, got {type(document).__name__}"
            )
        if metadata:
            meta.update(validate_metadata(metadata))
        if doc_id is None:
            doc_id = _content_id(text)
        elif not isinstance(doc_id, str):
            raise InvalidInputError(f"doc_id must be a str, got {type(doc_id).__name__}")
        own = first_non_space(text, 0)
        if own == len(text):
            return []
        if self._whole_if_fits:
            end = _end_of_content(text, own)
            if self._fits_whole(text, own, end):
                whole = {} if self._plain else self._whole_metadata(text, meta, own, end)
                return _chunks(doc_id, text, meta, [(own, own, end, None)], lambda o, e: whole)
        layout = self._layout(text, meta)
        return _chunks(doc_id, text, meta, self._cut(text, layout), layout.metadata)

    def chunk_many(self, documents: Iterable[Document | str]) -> list[Chunk]:
        """Chunk several documents; the chunks of each in order, documents in order."""
        return [c for d in documents for c in self.chunk(d)]

    # ---- the cutting loop ------------------------------------------------------------

    def _cut(self, text: str, layout: Layout) -> list[tuple[int, int, int, tuple[int, int] | None]]:
        plain = not layout.hard and not layout.quiet and type(layout).prefix is Layout.prefix
        if self.tokenizer is None and plain:
            return self._cut_chars(text, layout)
        return self._cut_any(text, layout)

    def _cut_any(
        self, text: str, layout: Layout
    ) -> list[tuple[int, int, int, tuple[int, int] | None]]:
        measure = Measure(text, self.tokenizer)
        length = len(text)
        hard = layout.hard
        out: list[tuple[int, int, int, tuple[int, int] | None]] = []
        pos = first_non_space(text, 0)
        prev_own = -1
        while pos < length:
            i = bisect.bisect_right(hard, pos)
            seg_end = hard[i] if i < len(hard) else length
            wanted = self.overlap if prev_own >= 0 else 0
            with_prefix = True
            while True:
                start, used = measure.back(pos, wanted, prev_own) if wanted else (pos, 0)
                prefix = layout.prefix(start) if with_prefix else None
                prefix_units = self.count(text[prefix[0] : prefix[1]]) if prefix else 0
                if prefix is not None and prefix_units > (self.size - used) // 2:
                    prefix, prefix_units = None, 0  # a header that big would crowd out the rows
                fit = self._fit(
                    text,
                    layout,
                    measure,
                    start,
                    pos,
                    seg_end,
                    prefix,
                    self.size - used - prefix_units,
                )
                if fit is not None:
                    break
                # only byte-level tokens at tiny sizes get here: give up overlap, then header
                if wanted > 0:
                    wanted = min(wanted, used) - 1
                elif prefix is not None:
                    with_prefix = False
                else:
                    raise ConfigurationError(
                        f"size={self.size} tokens cannot hold the text at offset {pos} "
                        f"({text[pos : measure.end_after(pos, 1)]!r}); use a larger size"
                    )
            cut, end = fit
            out.append((start, pos, end, prefix))
            prev_own = pos
            pos = first_non_space(text, cut)
        return out

    def _cut_chars(
        self, text: str, layout: Layout
    ) -> list[tuple[int, int, int, tuple[int, int] | None]]:
        """``_cut_any`` in characters for a layout of levels only (no breaks, quiet
        spans or prefixes): the same cuts without the general loop's calls per chunk,
        since a window of the remaining budget always fits (a property test compares
        the two)."""
        size, overlap, length, levels = self.size, self.overlap, len(text), layout.levels
        out: list[tuple[int, int, int, tuple[int, int] | None]] = []
        pos = first_non_space(text, 0)
        start = pos
        while pos < length:
            hi = start + size  # the overlap before pos counts against the limit
            if hi >= length:
                cut = length
            else:
                for level in levels:
                    cut = level.last(text, pos, hi)
                    if cut > pos:
                        break
                else:
                    cut = nudge(text, pos, hi)
            end = cut if not text[cut - 1].isspace() else _end_of_content(text, pos, cut)
            out.append((start, pos, end, None))
            prev_own, pos = pos, first_non_space(text, cut)
            start = max(prev_own, pos - overlap)
        return out

    def _fit(
        self,
        text: str,
        layout: Layout,
        measure: Measure,
        start: int,
        pos: int,
        seg_end: int,
        prefix: tuple[int, int] | None,
        budget: int,
    ) -> tuple[int, int] | None:
        """The cut and the chunk end for a chunk whose own part starts at ``pos``.

        ``budget`` units are left for the own part; in tokens the chunk is re-counted
        and the budget shrunk until it fits. None when not even one unit fits.
        """
        while budget >= 1:
            hi = measure.end_after(pos, budget)
            cut = seg_end if hi >= seg_end else self._best_cut(text, layout, pos, hi)
            end = cut if not text[cut - 1].isspace() else _end_of_content(text, pos, cut)
            excess = self._excess(text, start, end, prefix, measure)
            if excess <= 0:
                return cut, end
            if budget == 1:
                return None
            budget = max(1, budget - excess)
        return None

    def _best_cut(self, text: str, layout: Layout, lo: int, hi: int) -> int:
        check = len(layout.quiet) > 0
        for level in layout.levels:
            p = level.last(text, lo, hi)
            if p > lo and not (check and layout.is_quiet(p)):
                return p
        return hi if self.tokenizer is not None else nudge(text, lo, hi)

    def _excess(
        self,
        text: str,
        start: int,
        end: int,
        prefix: tuple[int, int] | None,
        measure: Measure,
    ) -> int:
        """Units over the limit for a candidate chunk (<= 0 when it fits)."""
        if self.tokenizer is None:
            extra = prefix[1] - prefix[0] if prefix else 0
            return end - start + extra - self.size
        if prefix is None:
            return measure.count(start, end) - self.size
        body = text[prefix[0] : prefix[1]] + text[start:end]
        return self.tokenizer.count(body) - self.size


def _content_id(text: str) -> str:
    """The default id of a plain string: ``"sha256:"`` and 16 hex digits of its hash."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


_CHUNKS = TypeAdapter(list[Chunk], config=ConfigDict(defer_build=True))


def _chunks(
    doc_id: str,
    text: str,
    meta: Metadata,
    rows: list[tuple[int, int, int, tuple[int, int] | None]],
    metadata_of: Callable[[int, int], Metadata],
) -> list[Chunk]:
    """The chunks of ``rows`` (start, own, end, header prefix), validated in one call.

    Each chunk gets the document's metadata ``meta`` plus ``metadata_of(own, end)``;
    validation gives every chunk its own copy of them.
    """
    values: list[dict[str, Any]] = []
    for index, (start, own, end, prefix) in enumerate(rows):
        extra = metadata_of(own, end)
        body = text[start:end]
        if prefix is not None:
            body = text[prefix[0] : prefix[1]] + body
            extra = {**extra, "header_start": prefix[0], "header_end": prefix[1]}
        values.append(
            {
                "id": f"{doc_id}#{index}",
                "doc_id": doc_id,
                "text": body,
                "start": start,
                "end": end,
                "index": index,
                "metadata": {**meta, **extra} if extra else meta,
            }
        )
    return _CHUNKS.validate_python(values)


def _end_of_content(text: str, lo: int, hi: int | None = None) -> int:
    """``lo + len(text[lo:hi].rstrip())``, without copying the text."""
    end = len(text) if hi is None else hi
    # strip a bounded tail at a time: trailing whitespace is usually short
    while end > lo:
        tail = text[max(lo, end - 256) : end]
        kept = tail.rstrip()
        end -= len(tail) - len(kept)
        if kept:
            break
    return end
