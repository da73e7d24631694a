"""SemanticChunker: breaks where the meaning of adjacent sentence windows shifts."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from ragmem.chunking.base import Chunker, Layout, PatternLevel
from ragmem.chunking.sentences import SentenceLevel, sentence_spans
from ragmem.embedders.base import Embedder
from ragmem.errors import ConfigurationError

if TYPE_CHECKING:
    from ragmem.chunking.base import Level, Unit
    from ragmem.tokens import Tokenizer
    from ragmem.types import Metadata

__all__ = ["SemanticChunker"]

_SPACE = re.compile(r"\s")


class SemanticChunker(Chunker):
    """Splits where the embedding similarity of adjacent sentence windows drops.

    For each gap between sentences ``i`` and ``i + 1``, the ``window`` sentences
    ending at ``i`` and the ``window`` sentences starting at ``i + 1`` are embedded
    (one ``embed`` call per document) and compared by cosine similarity. A gap is a
    breakpoint when its similarity is below ``threshold``, or, by default, when its
    distance (1 - similarity) is above the ``percentile``-th percentile of the
    document's distances. Every breakpoint ends a chunk; between breakpoints
    sentences are grouped up to the limit like ``SentenceChunker`` does, so no chunk
    exceeds ``size``.

    Args:
        embedder: any ``ragmem`` Embedder.
        window: sentences on each side of a gap.
        percentile: used when ``threshold`` is None (0-100).
        threshold: a fixed cosine similarity below which a gap is a breakpoint.
        size, overlap, unit, tokenizer: as for every ``Chunker``.

    Example:
        >>> from ragmem.embedders import HashingEmbedder
        >>> text = "Cats purr. Cats nap. Taxes rise. Taxes bite."
        >>> chunker = SemanticChunker(HashingEmbedder(), size=100, threshold=0.2)
        >>> [c.text for c in chunker.chunk(text)]
        ['Cats purr. Cats nap.', 'Taxes rise. Taxes bite.']
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        size: int,
        overlap: int = 0,
        unit: Unit | None = None,
        tokenizer: Tokenizer | None = None,
        window: int = 1,
        percentile: float = 95.0,
        threshold: float | None = None,
    ) -> None:
        super().__init__(size=size, overlap=overlap, unit=unit, tokenizer=tokenizer)
        if not isinstance(embedder, Embedder):
            raise ConfigurationError(f"embedder must be an Embedder, got {type(embedder).__name__}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ConfigurationError(f"window must be a positive int, got {window!r}")
        if not 0.0 <= percentile <= 100.0:
            raise ConfigurationError(f"percentile must be in [0, 100], got {percentile}")
        if threshold is not None and not -1.0 <= threshold <= 1.0:
            raise ConfigurationError(
                f"threshold must be a cosine similarity in [-1, 1], got {threshold}"
            )
        self.embedder = embedder
        self.window = window
        self.percentile = float(percentile)
        self.threshold = threshold
        self._levels: list[Level] = [SentenceLevel(), PatternLevel(_SPACE)]

    def breakpoints(self, text: str) -> list[int]:
        """Character positions (sentence starts) where the topic shifts."""
        spans = sentence_spans(text)
        n = len(spans)
        if n < 2:
            return []
        w = self.window
        left = [text[spans[max(0, i - w + 1)][0] : spans[i][1]] for i in range(n - 1)]
        right = [text[spans[i + 1][0] : spans[min(n - 1, i + w)][1]] for i in range(n - 1)]
        vectors = self.embedder.embed(left + right)
        a, b = vectors[: n - 1], vectors[n - 1 :]
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        similarity = np.einsum("ij,ij->i", a, b) / np.maximum(norms, np.finfo(np.float32).tiny)
        if self.threshold is not None:
            cut = similarity < self.threshold
        else:
            distance = 1.0 - similarity
            cut = distance > np.percentile(distance, self.percentile)
        return [spans[i + 1][0] for i in np.flatnonzero(cut).tolist()]

    def _layout(self, text: str, metadata: Metadata) -> Layout:
        return Layout(self._levels, hard=self.breakpoints(text))
