"""Counting one document in a chunker's unit: its token positions, and chunk counts
that re-tokenize only a chunk's edges when the tokenizer allows it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ragmem.tokens import Tokenizer

__all__ = ["Measure"]

# below this many characters a chunk is simply re-counted whole
_EDGE_MIN = 64
# a space after a non-whitespace character: where a ``space_split`` tokenizer's tokens split
SPACE_SPLIT = re.compile(r"(?<=\S) ")


class Measure:
    """Counts one document in the chunker's unit (characters or document tokens)."""

    def __init__(self, text: str, tokenizer: Tokenizer | None) -> None:
        self.text = text
        self.length = len(text)
        self.tokenizer = tokenizer
        if tokenizer is None:
            return
        arrays = getattr(tokenizer, "span_arrays", None)
        if callable(arrays):  # optional fast path: two integer arrays, no tuple per token
            starts, ends = arrays(text)
            self.starts = np.asarray(starts, dtype=np.int64)
            self.ends = np.asarray(ends, dtype=np.int64)
        else:
            spans = np.array(tokenizer.spans(text), dtype=np.int64).reshape(-1, 2)
            self.starts, self.ends = spans[:, 0].copy(), spans[:, 1].copy()
        self.n_tokens = len(self.starts)
        self.space_split = getattr(tokenizer, "space_split", False) is True
        # the last _ended() query: the cutting loop asks twice for each chunk's start
        self._ended_at = (-1, 0)

    def _ended(self, pos: int) -> int:
        """Number of tokens ending at or before ``pos``."""
        if self._ended_at[0] != pos:
            self._ended_at = (pos, int(self.ends.searchsorted(pos, "right")))
        return self._ended_at[1]

    def end_after(self, pos: int, n: int) -> int:
        """The farthest position reached by taking ``n`` units from ``pos``."""
        if self.tokenizer is None:
            return min(pos + n, self.length)
        j = self._ended(pos) + n - 1  # counted from the first token ending after pos
        return self.length if j >= self.n_tokens else max(int(self.ends[j]), pos + 1)

    def back(self, pos: int, n: int, floor: int) -> tuple[int, int]:
        """Start of the ``n`` units before ``pos`` (not before ``floor``) and their count."""
        if self.tokenizer is None:
            start = max(floor, pos - n)
            return start, pos - start
        k = self._ended(pos)
        first = int(self.starts.searchsorted(floor, "left"))
        i = max(k - n, first)
        if i >= k:
            return pos, 0
        start = max(floor, int(self.starts[i]))
        # a character split into several tokens comes whole: count all of its tokens
        return start, k - int(self.starts.searchsorted(start, "left"))

    def count(self, lo: int, hi: int) -> int:
        """Units in ``text[lo:hi]`` as the tokenizer counts that text on its own.

        With a ``space_split`` tokenizer, ``text[lo:hi]`` splits at the first and the
        last space after a non-whitespace character (``a``, ``b``): its tokens are
        those of ``text[lo:a]``, then the document's own tokens between ``a`` and
        ``b`` (the document splits there too), then those of ``text[b:hi]``. So only
        the two edges are tokenized again.
        """
        if self.tokenizer is None:
            return hi - lo
        if lo == 0 and hi == self.length:
            return self.n_tokens
        text, count = self.text, self.tokenizer.count
        if not self.space_split or hi - lo < _EDGE_MIN:
            return count(text[lo:hi])
        m = SPACE_SPLIT.search(text, lo, hi)
        if m is None:
            return count(text[lo:hi])
        a = m.start()
        if hi == self.length or (text[hi] == " " and not text[hi - 1].isspace()):
            b = hi  # the document itself splits at hi
        else:
            b = self._last_split(a, hi)
        middle = int(self.starts.searchsorted(b, "left")) - int(self.starts.searchsorted(a, "left"))
        head = count(text[lo:a]) if a > lo else 0  # a == lo: the document splits at lo
        tail = count(text[b:hi]) if b < hi else 0
        return head + middle + tail

    def _last_split(self, a: int, hi: int) -> int:
        """The last space after a non-whitespace character in ``(a, hi)``, else ``a``."""
        text = self.text
        p = text.rfind(" ", a + 1, hi)
        for _ in range(16):  # inside a long run of spaces, settle for a longer tail
            if p <= a or not text[p - 1].isspace():
                break
            p = text.rfind(" ", a + 1, p)
        return p if p > a and not text[p - 1].isspace() else a
