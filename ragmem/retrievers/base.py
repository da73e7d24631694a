"""The Retriever and Reranker interfaces: one shape, so retrievers compose."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from ragmem._util import to_thread
from ragmem.errors import InvalidInputError
from ragmem.filters import Filter, FilterLike, parse_filter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ragmem.types import Hit

__all__ = ["Reranker", "Retriever"]


def _check_text(query: str) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError("query must be a non-empty string")


def _check_query(query: str, k: int) -> None:
    _check_text(query)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")


class Retriever(ABC):
    """Finds the ``k`` best hits for a query, optionally within a metadata filter.

    Dense, BM25, hybrid and reranking retrievers all have this shape. The filter is
    applied before top-k.

    Attributes:
        score_floor: the score of a document that does not match at all, when the
            scale has one (BM25: 0); fusion's min-max normalises down to it.
    """

    score_floor: float | None = None

    def retrieve(self, query: str, k: int = 10, *, where: FilterLike | None = None) -> list[Hit]:
        """The best ``k`` hits for ``query``, best first."""
        _check_query(query, k)
        return self._retrieve(query, k, parse_filter(where))

    async def retrieve_async(
        self, query: str, k: int = 10, *, where: FilterLike | None = None
    ) -> list[Hit]:
        """Async twin of ``retrieve``."""
        _check_query(query, k)
        return await self._retrieve_async(query, k, parse_filter(where))

    @abstractmethod
    def _retrieve(self, query: str, k: int, where: Filter | None) -> list[Hit]: ...

    async def _retrieve_async(self, query: str, k: int, where: Filter | None) -> list[Hit]:
        return await to_thread(self._retrieve, query, k, where)


class Reranker(ABC):
    """Reorders candidate hits for a query; new scores go in ``score``, the old in ``explain``."""

    name: str = "reranker"

    def rerank(self, query: str, hits: Sequence[Hit], k: int | None = None) -> list[Hit]:
        """Hits reordered best first, cut to ``k`` when given."""
        _check_text(query)
        if not hits:
            return []
        ranked = self._rerank(query, list(hits))
        return ranked if k is None else ranked[:k]

    async def rerank_async(
        self, query: str, hits: Sequence[Hit], k: int | None = None
    ) -> list[Hit]:
        """Async twin of ``rerank``."""
        _check_text(query)
        if not hits:
            return []
        ranked = await self._rerank_async(query, list(hits))
        return ranked if k is None else ranked[:k]

    @abstractmethod
    def _rerank(self, query: str, hits: list[Hit]) -> list[Hit]: ...

    async def _rerank_async(self, query: str, hits: list[Hit]) -> list[Hit]:
        return await to_thread(self._rerank, query, hits)
