"""The Embedder and TokenEmbedder interfaces: adapters implement one batch method."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from ragmem._util import batched, to_thread
from ragmem.errors import (
    BackendResponseError,
    InvalidInputError,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ragmem.types import Purpose, Vectors

__all__ = ["Embedder", "TokenEmbedder", "check_texts", "l2_normalize"]

_PURPOSES = ("document", "query")


def check_texts(texts: Sequence[str]) -> list[str]:
    """Validate a batch of texts: a sequence of non-blank strings.

    Raises:
        InvalidInputError: a bare string was passed, or an element is not a string or is blank.
    """
    if isinstance(texts, str):
        raise InvalidInputError("texts must be a sequence of strings, not a single string")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise InvalidInputError(f"texts[{i}] is {type(text).__name__}, expected str")
        if not text.strip():
            raise InvalidInputError(f"texts[{i}] is empty or whitespace; nothing to embed")
    return out


def _check_purpose(purpose: str) -> None:
    if purpose not in _PURPOSES:
        raise InvalidInputError(f"purpose must be one of {_PURPOSES}, got {purpose!r}")


def l2_normalize(vectors: Vectors) -> Vectors:
    """Scale each row to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.maximum(norms, np.finfo(np.float32).tiny, out=norms)
    unit: Vectors = (vectors / norms).astype(np.float32, copy=False)
    return unit


class Embedder(ABC):
    """Turns texts into float32 vectors of shape (n, dimensions).

    Subclasses implement ``_embed_batch`` (and, for network backends,
    ``_embed_batch_async``); batching, validation and the async fallback live here.

    Example:
        >>> from ragmem.embedders import HashingEmbedder
        >>> HashingEmbedder(dimensions=16).embed(["hello", "world"]).shape
        (2, 16)
    """

    name: str = "embedder"
    dimensions: int
    batch_size: int = 64
    #: ``embed_async`` may run batches concurrently: true for network backends, whose
    #: client bounds the requests in flight; CPU-bound embedders keep them in sequence.
    concurrent_batches: bool = False

    def embed(self, texts: Sequence[str], *, purpose: Purpose = "document") -> Vectors:
        """Embed ``texts``; one row per text, in input order."""
        items = self._prepare(texts, purpose)
        parts = [self._checked(self._embed_batch(b, purpose), len(b)) for b in self._batches(items)]
        return self._stack(parts)

    async def embed_async(self, texts: Sequence[str], *, purpose: Purpose = "document") -> Vectors:
        """Async twin of ``embed``.

        Network embedders (``concurrent_batches``) send their batches concurrently, within
        the client's concurrency limit; if one batch fails, the rest are cancelled.
        """
        items = self._prepare(texts, purpose)
        batches = self._batches(items)
        if self.concurrent_batches and len(batches) > 1:
            import asyncio  # here, not at module level: ``import ragmem`` stays light

            tasks = [asyncio.ensure_future(self._embed_batch_async(b, purpose)) for b in batches]
            try:
                results = await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        else:
            results = [await self._embed_batch_async(b, purpose) for b in batches]
        return self._stack([self._checked(r, len(b)) for r, b in zip(results, batches)])

    def embed_query(self, text: str) -> Vectors:
        """Embed one query; returns a 1-D vector."""
        vector: Vectors = self.embed([text], purpose="query")[0]
        return vector

    @abstractmethod
    def _embed_batch(self, texts: Sequence[str], purpose: Purpose) -> Vectors:
        """Embed one batch (already validated, at most ``batch_size`` texts)."""

    async def _embed_batch_async(self, texts: Sequence[str], purpose: Purpose) -> Vectors:
        return await to_thread(self._embed_batch, texts, purpose)

    def _batches(self, items: list[str]) -> list[Sequence[str]]:
        return list(batched(items, self.batch_size))

    def _prepare(self, texts: Sequence[str], purpose: str) -> list[str]:
        _check_purpose(purpose)
        return check_texts(texts)

    def _checked(self, vectors: Vectors, expected_rows: int) -> Vectors:
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim != 2 or array.shape[0] != expected_rows:
            raise BackendResponseError(
                f"returned shape {array.shape} for {expected_rows} texts", backend=self.name
            )
        if array.shape[1] != self.dimensions:
            raise BackendResponseError(
                f"returned {array.shape[1]}-dimensional vectors, expected {self.dimensions}",
                backend=self.name,
            )
        if not np.isfinite(array).all():
            raise BackendResponseError("returned NaN or infinite values", backend=self.name)
        return array

    def _stack(self, parts: list[Vectors]) -> Vectors:
        if not parts:
            return np.empty((0, self.dimensions), np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dimensions={self.dimensions})"


class TokenEmbedder(ABC):
    """Per-token contextual vectors for late interaction (ColBERT-style MaxSim).

    ``embed_tokens`` returns one float32 array of shape (n_tokens, dimensions) per
    text, L2-normalised rows, padding and special tokens removed.
    """

    name: str = "token-embedder"
    dimensions: int
    batch_size: int = 64

    def embed_tokens(self, texts: Sequence[str], *, purpose: Purpose = "document") -> list[Vectors]:
        """Token vectors for each text, in input order."""
        _check_purpose(purpose)
        out: list[Vectors] = []
        for batch in batched(check_texts(texts), self.batch_size):
            got = self._embed_tokens_batch(batch, purpose)
            if len(got) != len(batch):
                raise BackendResponseError(
                    f"returned {len(got)} token matrices for {len(batch)} texts", backend=self.name
                )
            out.extend(got)
        return out

    async def embed_tokens_async(
        self, texts: Sequence[str], *, purpose: Purpose = "document"
    ) -> list[Vectors]:
        """Async twin of ``embed_tokens`` (runs in a worker thread)."""
        return await to_thread(self.embed_tokens, texts, purpose=purpose)

    @abstractmethod
    def _embed_tokens_batch(self, texts: Sequence[str], purpose: Purpose) -> list[Vectors]:
        """Token vectors for one validated batch."""
