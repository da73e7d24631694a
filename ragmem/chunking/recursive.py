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
_LINE = re.compile(r"[\r\n]")
_SPACE = re.compile(r"\s")


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

    def __init__(
        self,
        *,
        size: int,
        overlap: int = 0,
        unit: Unit | None = None,
        tokenizer: Tokenizer | None = None,
        separators: Sequence[str | re.Pattern[str]] | None = None,
        sentences: bool = True,
    ) -> None:
        super().__init__(size=size, overlap=overlap, unit=unit, tokenizer=tokenizer)
        if isinstance(separators, str):
            raise ConfigurationError("separators must be a sequence of strings or patterns")
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

    def _layout(self, text: str, metadata: Metadata) -> Layout:
        return Layout(self._levels)
