"""LangChain ``Embeddings`` over a ragmem ``Embedder``, and the reverse.

Public through ``ragmem.integrations.langchain``; needs the ``langchain`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ragmem.embedders.base import Embedder
from ragmem.errors import InvalidInputError, MissingDependencyError

try:
    from langchain_core.embeddings import Embeddings
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(package="langchain-core", extra="langchain") from exc

if TYPE_CHECKING:
    from ragmem.types import Purpose, Vectors

__all__ = ["LangChainEmbedder", "RagmemEmbeddings"]


class RagmemEmbeddings(Embeddings):
    """A LangChain ``Embeddings`` backed by a ragmem ``Embedder``.

    Documents are embedded with ``purpose="document"`` and queries with
    ``purpose="query"``, so asymmetric models keep their prefixes.

    Args:
        embedder: any ragmem embedder.

    Example:
        >>> from ragmem.embedders import HashingEmbedder
        >>> len(RagmemEmbeddings(HashingEmbedder(dimensions=8)).embed_query("hi"))
        8
    """

    def __init__(self, embedder: Embedder) -> None:
        if not isinstance(embedder, Embedder):
            raise InvalidInputError(
                f"embedder must be a ragmem Embedder, got {type(embedder).__name__}"
            )
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in input order."""
        rows: list[list[float]] = self.embedder.embed(texts).tolist()
        return rows

    def embed_query(self, text: str) -> list[float]:
        """The query vector for ``text``."""
        row: list[float] = self.embedder.embed_query(text).tolist()
        return row

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async twin of ``embed_documents``."""
        rows: list[list[float]] = (await self.embedder.embed_async(texts)).tolist()
        return rows

    async def aembed_query(self, text: str) -> list[float]:
        """Async twin of ``embed_query``."""
        vectors = await self.embedder.embed_async([text], purpose="query")
        row: list[float] = vectors[0].tolist()
        return row


class LangChainEmbedder(Embedder):
    """A ragmem ``Embedder`` backed by any LangChain ``Embeddings``.

    Args:
        embeddings: the LangChain embeddings object.
        dimensions: vector width; when omitted, one probe query is embedded to learn it.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> LangChainEmbedder(DeterministicFakeEmbedding(size=8)).embed(["hi"]).shape
        (1, 8)
    """

    name = "langchain"

    def __init__(self, embeddings: Embeddings, *, dimensions: int | None = None) -> None:
        if not isinstance(embeddings, Embeddings):
            raise InvalidInputError(
                f"embeddings must be a LangChain Embeddings, got {type(embeddings).__name__}"
            )
        self.embeddings = embeddings
        if dimensions is None:
            dimensions = len(embeddings.embed_query("dimension probe"))
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
            raise InvalidInputError(f"dimensions must be a positive integer, got {dimensions!r}")
        self.dimensions = dimensions

    def _embed_batch(self, texts: Sequence[str], purpose: Purpose) -> Vectors:
        if purpose == "query":
            rows = [self.embeddings.embed_query(t) for t in texts]
        else:
            rows = self.embeddings.embed_documents(list(texts))
        return np.asarray(rows, dtype=np.float32)

    async def _embed_batch_async(self, texts: Sequence[str], purpose: Purpose) -> Vectors:
        if purpose == "query":
            rows = [await self.embeddings.aembed_query(t) for t in texts]
        else:
            rows = await self.embeddings.aembed_documents(list(texts))
        return np.asarray(rows, dtype=np.float32)
