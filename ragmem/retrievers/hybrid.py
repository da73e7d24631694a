"""HybridRetriever: run several retrievers and fuse their rankings by id."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ragmem.errors import ConfigurationError
from ragmem.retrievers.base import Retriever
from ragmem.retrievers.fusion import FUSIONS, fuse

if TYPE_CHECKING:
    from ragmem.filters import Filter
    from ragmem.types import Hit

__all__ = ["HybridRetriever"]


def _default_name(retriever: Retriever) -> str:
    name = type(retriever).__name__.removesuffix("Retriever").lower()
    return name or "retriever"


class HybridRetriever(Retriever):
    """Fuses the rankings of several retrievers (e.g. BM25 and dense) into one.

    Each sub-retriever fetches ``depth`` candidates (with the filter applied before its
    top-k); the lists are fused by document id (never by text) and cut to ``k``. Each
    hit's ``explain["retrievers"]`` holds every retriever's rank and score for it. The
    async path runs the sub-retrievers concurrently; sync and async give identical
    results.

    Args:
        retrievers: a sequence, or a mapping of name to retriever (names appear in
            ``explain``; a sequence is named by class, e.g. ``bm25``, ``dense``).
        fusion: ``"rrf"`` (reciprocal rank fusion), ``"minmax"`` or ``"zscore"`` (convex
            combination of normalised scores), or ``"dbsf"`` (distribution-based score
            fusion). See ``ragmem.retrievers.fusion.fuse``. With ``"minmax"``, a retriever
            with a ``score_floor`` (BM25) is normalised down to it, so a short or flat
            list (two BM25 hits on a small corpus) keeps its proportions.
        weights: one per retriever (default equal); with ``"rrf"`` this is weighted RRF.
        rrf_k: the RRF constant (60, as in the original paper).
        depth: candidates fetched from each retriever (at least ``k``).

    Example:
        >>> from ragmem.retrievers import BM25Retriever
        >>> a, b = BM25Retriever(), BM25Retriever(k1=2.0)
        >>> a.add(["x", "y"], ["solar power", "wind power"])
        >>> b.add(["x", "y"], ["solar power", "wind power"])
        >>> hybrid = HybridRetriever({"a": a, "b": b}, fusion="rrf")
        >>> hit = hybrid.retrieve("solar", k=1)[0]
        >>> hit.id, hit.explain["retrievers"]["a"]["rank"]
        ('x', 1)
    """

    def __init__(
        self,
        retrievers: Sequence[Retriever] | Mapping[str, Retriever],
        *,
        fusion: str = "rrf",
        weights: Sequence[float] | None = None,
        rrf_k: float = 60.0,
        depth: int = 100,
    ) -> None:
        if isinstance(retrievers, Mapping):
            names, items = list(retrievers), list(retrievers.values())
        else:
            items = list(retrievers)
            names = [_default_name(r) for r in items]
            if len(set(names)) != len(names):
                names = [f"{n}{i}" for i, n in enumerate(names)]
        if not items:
            raise ConfigurationError("HybridRetriever needs at least one retriever")
        for item in items:
            if not isinstance(item, Retriever):
                raise ConfigurationError(f"{item!r} is not a Retriever")
        if fusion not in FUSIONS:
            raise ConfigurationError(f"unknown fusion {fusion!r}; use one of {', '.join(FUSIONS)}")
        if weights is not None and len(weights) != len(items):
            raise ConfigurationError(f"{len(weights)} weights for {len(items)} retrievers")
        if not rrf_k >= 0:
            raise ConfigurationError(f"rrf_k must be >= 0, got {rrf_k}")
        if not isinstance(depth, int) or depth < 1:
            raise ConfigurationError(f"depth must be a positive integer, got {depth!r}")
        self.names = names
        self.retrievers = items
        self.fusion = fusion
        self.weights = None if weights is None else [float(w) for w in weights]
        self.rrf_k = rrf_k
        self.depth = depth

    def _fuse(self, lists: Sequence[list[Hit]], k: int) -> list[Hit]:
        return fuse(
            lists,
            self.names,
            fusion=self.fusion,
            weights=self.weights,
            rrf_k=self.rrf_k,
            floors=[r.score_floor for r in self.retrievers],
            limit=k,
        )

    def _retrieve(self, query: str, k: int, where: Filter | None) -> list[Hit]:
        depth = max(k, self.depth)
        lists = [r.retrieve(query, depth, where=where) for r in self.retrievers]
        return self._fuse(lists, k)

    async def _retrieve_async(self, query: str, k: int, where: Filter | None) -> list[Hit]:
        depth = max(k, self.depth)
        lists = await asyncio.gather(
            *(r.retrieve_async(query, depth, where=where) for r in self.retrievers)
        )
        return self._fuse(lists, k)

    def __repr__(self) -> str:
        return f"HybridRetriever({self.names}, fusion={self.fusion!r}, weights={self.weights})"
