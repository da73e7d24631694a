"""Maximal marginal relevance: trade relevance for diversity among the top hits."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ragmem.embedders.base import l2_normalize
from ragmem.errors import ConfigurationError, InvalidInputError
from ragmem.retrievers.base import Retriever

if TYPE_CHECKING:
    from ragmem.embedders.base import Embedder
    from ragmem.filters import Filter
    from ragmem.types import Hit, Vectors

__all__ = ["MMRRetriever", "mmr"]


def mmr(query: Vectors, candidates: Vectors, k: int, *, lambda_mult: float = 0.5) -> list[int]:
    """Indices of ``k`` candidates chosen greedily by maximal marginal relevance.

    Each step takes the candidate maximising ``lambda_mult * sim(query, d) -
    (1 - lambda_mult) * max sim(d, already chosen)``, with cosine similarity.
    ``lambda_mult=1`` is plain relevance order; ``0`` is maximal diversity.

    Example:
        >>> import numpy as np
        >>> docs = np.array([[1, 0], [0.99, 0.1], [0.6, 0.8]], np.float32)
        >>> mmr(np.array([1, 0.2], np.float32), docs, 2, lambda_mult=0.5)
        [1, 2]
    """
    if not 0.0 <= lambda_mult <= 1.0:
        raise ConfigurationError(f"lambda_mult must be in [0, 1], got {lambda_mult}")
    n = len(candidates)
    if n == 0:
        return []
    docs = l2_normalize(np.asarray(candidates, np.float32))
    q = l2_normalize(np.asarray(query, np.float32).reshape(1, -1))[0]
    relevance = docs @ q
    pair = docs @ docs.T
    chosen: list[int] = []
    # the highest similarity of each candidate to anything chosen so far
    redundancy = np.full(n, -np.inf, np.float32)
    available = np.ones(n, np.bool_)
    for _ in range(min(k, n)):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        gain = lambda_mult * relevance - (1 - lambda_mult) * penalty
        gain[~available] = -np.inf
        best = int(np.argmax(gain))  # first index wins ties: keeps the base order
        chosen.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, pair[best])
    return chosen


class MMRRetriever(Retriever):
    """Fetches ``fetch_k`` hits from ``base`` and picks ``k`` of them by MMR.

    Hits are embedded with ``embedder`` (their text) to measure similarity; wrap the
    embedder in a cache to avoid re-embedding popular documents.

    Args:
        base: any retriever.
        embedder: embeds the query and the hits' texts.
        lambda_mult: relevance share, in [0, 1] (1 = no diversification).
        fetch_k: candidates to choose from.

    Example:
        >>> from ragmem import HashingEmbedder
        >>> from ragmem.retrievers import BM25Retriever
        >>> bm25 = BM25Retriever()
        >>> bm25.add(["a", "b", "c"], ["solar power plant", "solar power plants", "wind power"])
        >>> mmr_r = MMRRetriever(bm25, HashingEmbedder(dimensions=64), lambda_mult=0.3)
        >>> [h.id for h in mmr_r.retrieve("solar power", k=2)]
        ['a', 'c']
    """

    def __init__(
        self,
        base: Retriever,
        embedder: Embedder,
        *,
        lambda_mult: float = 0.5,
        fetch_k: int = 50,
    ) -> None:
        if not 0.0 <= lambda_mult <= 1.0:
            raise ConfigurationError(f"lambda_mult must be in [0, 1], got {lambda_mult}")
        if not isinstance(fetch_k, int) or fetch_k < 1:
            raise ConfigurationError(f"fetch_k must be a positive integer, got {fetch_k!r}")
        self.base = base
        self.embedder = embedder
        self.lambda_mult = lambda_mult
        self.fetch_k = fetch_k

    def _texts(self, hits: list[Hit]) -> list[str]:
        missing = [h.id for h in hits if not h.text or not h.text.strip()]
        if missing:
            raise InvalidInputError(f"MMR needs hit texts; these hits have none: {missing[:10]}")
        return [h.text for h in hits if h.text]

    def _select(self, query_vec: Vectors, doc_vecs: Vectors, hits: list[Hit], k: int) -> list[Hit]:
        picked = mmr(query_vec, doc_vecs, k, lambda_mult=self.lambda_mult)
        out = []
        for position, i in enumerate(picked, start=1):
            hit = hits[i].model_copy(deep=True)
            hit.explain["mmr"] = {"rank": position, "base_rank": i + 1}
            out.append(hit)
        return out

    def _retrieve(self, query: str, k: int, where: Filter | None) -> list[Hit]:
        hits = self.base.retrieve(query, max(k, self.fetch_k), where=where)
        if not hits:
            return []
        query_vec = self.embedder.embed([query], purpose="query")[0]
        doc_vecs = self.embedder.embed(self._texts(hits), purpose="document")
        return self._select(query_vec, doc_vecs, hits, k)

    async def _retrieve_async(self, query: str, k: int, where: Filter | None) -> list[Hit]:
        hits = await self.base.retrieve_async(query, max(k, self.fetch_k), where=where)
        if not hits:
            return []
        query_vec = (await self.embedder.embed_async([query], purpose="query"))[0]
        doc_vecs = await self.embedder.embed_async(self._texts(hits), purpose="document")
        return self._select(query_vec, doc_vecs, hits, k)
