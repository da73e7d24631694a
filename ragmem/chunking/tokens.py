"""TokenChunker: fixed windows of tokens, cut on token boundaries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ragmem.chunking.base import Chunker, Layout

if TYPE_CHECKING:
    from ragmem.types import Metadata

__all__ = ["TokenChunker"]


class TokenChunker(Chunker):
    """Windows of ``size`` tokens that advance by ``size - overlap`` tokens.

    Cuts fall on the document's token boundaries (``tokenizer.spans``) and each
    window's text is the exact source text between them, trimmed of whitespace at
    its edges. With ``unit="chars"`` the windows are of code points. A window whose
    re-tokenised text would exceed ``size`` (a BPE merge across the edge) is shortened.

    Example:
        >>> from ragmem.tokens import WhitespaceTokenizer
        >>> chunker = TokenChunker(size=3, overlap=1, tokenizer=WhitespaceTokenizer())
        >>> [c.text for c in chunker.chunk("a b c d e f g")]
        ['a b c', 'c d e', 'e f g']
    """

    _whole_if_fits = _plain = True

    def _layout(self, text: str, metadata: Metadata) -> Layout:
        return Layout()
