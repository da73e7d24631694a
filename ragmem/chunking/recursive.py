"""RecursiveChunker: paragraphs, then lines, sentences, words, characters."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ragmem.chunking.base import Chunker, Layout, PatternLevel
from ragmem.chunking.sentences import SentenceLevel
from ragmem.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ragmem.chunking.base import Level, Unit
    from ragmem.tokens import Tokenizer
    from ragmem.types import Metadata

__all__ = ["PARAGRAPH", "RecursiveChunker"]

_NL = r"(?:\r\n|\r|\n)"
PARAGRAPH = re.compile(rf"{_NL}[^\S\r\n]*{_NL}")
"""A blank line (any newline convention), the default first separator."""
# the same without lone carriage returns: a literal first character scans many times faster
_LF_PARAGRAPH = re.compile(r"\n[^\S\n]*\n")
_LINE = re.compile(r"[\r\n]")
_SPACE = re.compile(r"\s")


class _BlankLineLevel:
    """``PatternLevel(_LF_PARAGRAPH)``, found from the window's end.

    Most blank lines are a bare ``\n\n``: one reverse search finds the last of them,
    and a forward search over the rest of the window confirms no blank line holding
    spaces follows it; only when one does is the regex run over the whole window.
    """

    def __init__(self) -> None:
        self._regex = PatternLevel(_LF_PARAGRAPH)

    def last(self, text: str, lo: int, hi: int) -> int:
        stop = min(len(text), hi + 1)  # as PatternLevel: the match ends by hi + 1
        s = text.rfind("\n\n", lo, stop)
        if _LF_PARAGRAPH.search(text, s + 1 if s >= 0 else lo, stop) is None:
            return s if s > lo else -1
        return self._regex.last(text, lo, hi)


class RecursiveChunker(Chunker):
    """Cuts at the strongest boundary that keeps a chunk within the limit.

    Each chunk extends as far as the limit allows and is then cut at the last
    paragraph break inside that window; if there is none, at the last line break,
    then sentence end, then whitespace, and only then between characters (never
    inside a grapheme cluster when avoidable). So small pieces are merged up to the
    limit and only oversize pieces are split further, in one pass over the text.

    Args:
        separators: replaces the paragraph and line levels: strings (literal) or
            compiled patterns, strongest first; a chunk is cut at the start of a
            match. Sentences, whitespace and characters always follow as fallbacks
            (pass ``sentences=False`` to skip the sentence level).
        size, overlap, unit, tokenizer: as for every ``Chunker``.

    Example:
        >>> text = "First paragraph.\\n\\nSecond one, longer than the first."
        >>> [c.text for c in RecursiveChunker(size=40).chunk(text)]
        ['First paragraph.', 'Second one, longer than the first.']
    """

    _whole_if_fits = _plain = True

    def __init__(
        self,
        *,
        separators: Sequence[str | re.Pattern[str]] | None = None,
        sentences: bool = True,
        size: int,
        overlap: int = 0,
        unit: Unit | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        if isinstance(separators, str):
            raise ConfigurationError("separators must be a sequence of strings or patterns")
        super().__init__(size=size, overlap=overlap, unit=unit, tokenizer=tokenizer)
        self._default = separators is None
        seps = [PARAGRAPH, _LINE] if separators is None else list(separators)
        levels: list[Level] = []
        for sep in seps:
            if not isinstance(sep, (str, re.Pattern)):
                raise ConfigurationError(f"separator {sep!r} is not a str or re.Pattern")
            if sep == "":
                continue  # the character level is always last
            levels.append(PatternLevel(sep))
        if sentences:
            levels.append(SentenceLevel())
        levels.append(PatternLevel(_SPACE))
        self._levels = levels
        lf_levels = [_BlankLineLevel(), *levels[1:]] if self._default else levels
        self._any_newline, self._lf_only = Layout(levels), Layout(lf_levels)

    def _layout(self, text: str, metadata: Metadata) -> Layout:
        return self._any_newline if "\r" in text else self._lf_only
