"""Reranking: RerankRetriever wraps any retriever; LateInteractionReranker scores by MaxSim."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ragmem.errors import ConfigurationError, InvalidInputError
from ragmem.retrievers.base import Reranker, Retriever
from ragmem.retrievers.fusion import normalize
from ragmem.retrievers.tokenvectors import Encoding, TokenVectorStore
from ragmem.types import Hit

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ragmem.embedders.base import TokenEmbedder
    from ragmem.filters import Filter
    from ragmem.types import Vectors

__all__ = ["NORMALIZATIONS", "LateInteractionReranker", "Normalization", "RerankRetriever"]

Normalization = Literal["minmax", "zscore"]
NORMALIZATIONS: tuple[str, ...] = ("minmax", "zscore")


class RerankRetriever(Retriever):
    """Reranks the top ``depth`` hits of ``base``; returns the best ``k``.

    When ``k`` exceeds ``depth``, the hits below ``depth`` follow the reranked ones in
    their first-stage order, with their first-stage scores.

    Args:
        base: any retriever (the filter is applied there, before its top-k).
        reranker: any ``Reranker`` (late interaction, Cohere, ...).
        depth: candidates to rerank (at least ``k``).

    Example::

        from ragmem.embedders.local import LocalEmbedder

        reranker = LateInteractionReranker(LocalEmbedder())
        reranker.index(ids, texts)  # token vectors once, int8 by default
        retriever = RerankRetriever(hybrid, reranker, depth=50)
        hits = retriever.retrieve("what do solar panels convert?", k=10)
    """

    def __init__(self, base: Retriever, reranker: Reranker, *, depth: int = 50) -> None:
        if not isinstance(depth, int) or depth < 1:
            raise ConfigurationError(f"depth must be a positive integer, got {depth!r}")
        self.base = base
        self.reranker = reranker
        self.depth = depth

    def _retrieve(self, query: str, k: int, where: Filter | None) -> list[Hit]:
        hits = self.base.retrieve(query, max(k, self.depth), where=where)
        head = self.reranker.rerank(query, hits[: self.depth])
        return (head + hits[self.depth :])[:k]

    async def _retrieve_async(self, query: str, k: int, where: Filter | None) -> list[Hit]:
        hits = await self.base.retrieve_async(query, max(k, self.depth), where=where)
        head = await self.reranker.rerank_async(query, hits[: self.depth])
        return (head + hits[self.depth :])[:k]


class LateInteractionReranker(Reranker):
    """ColBERT-style MaxSim reranking with any ``TokenEmbedder``.

    The score of a document is the sum, over the query's token vectors, of the best
    dot product with any of the document's token vectors, computed for the whole
    candidate set in one matrix product. Document token vectors come from ``store``
    when present (precomputed with ``index``, so reranking never re-encodes them);
    otherwise they are computed from the hit's text, and kept in the store when
    ``cache`` is true.

    Args:
        token_embedder: any ``TokenEmbedder`` (e.g. the local MiniLM's token states).
        store: token vectors by document id; default an empty ``int8`` store.
        weight: the MaxSim share of the final score. 1.0 ranks by MaxSim alone;
            below 1 the final score is ``weight * norm(maxsim) + (1 - weight) *
            norm(previous score)``, blending in the first-stage ranking.
        normalization: ``norm`` above, computed over the candidate set of one query:
            ``"minmax"`` maps each score list to [0, 1]; ``"zscore"`` to mean 0 and
            standard deviation 1, so an outlier at the top does not squash the
            rest of the list (see ``ragmem.retrievers.fusion.normalize``).
        cache: keep token vectors computed on demand.
    """

    name = "late-interaction"

    def __init__(
        self,
        token_embedder: TokenEmbedder,
        *,
        store: TokenVectorStore | None = None,
        encoding: Encoding = "int8",
        weight: float = 1.0,
        normalization: Normalization = "minmax",
        cache: bool = True,
    ) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ConfigurationError(f"weight must be in [0, 1], got {weight}")
        if normalization not in NORMALIZATIONS:
            raise ConfigurationError(
                f"unknown normalization {normalization!r}; use one of {', '.join(NORMALIZATIONS)}"
            )
        self.token_embedder = token_embedder
        self.store = (
            store
            if store is not None
            else TokenVectorStore(token_embedder.dimensions, encoding=encoding)
        )
        if self.store.dimensions != token_embedder.dimensions:
            raise ConfigurationError(
                f"token store has {self.store.dimensions} dimensions, "
                f"the embedder {token_embedder.dimensions}"
            )
        self.weight = weight
        self.normalization: Normalization = normalization
        self.cache = cache

    def index(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Precompute and store document token vectors."""
        if len(ids) != len(texts):
            raise InvalidInputError(f"got {len(texts)} texts for {len(ids)} ids")
        self.store.put(ids, self.token_embedder.embed_tokens(texts, purpose="document"))

    def _missing(self, hits: list[Hit]) -> tuple[list[str], list[str]]:
        ids, texts = [], []
        for hit in hits:
            if hit.id in self.store or hit.id in ids:
                continue
            if hit.text is None or not hit.text.strip():
                raise InvalidInputError(
                    f"hit {hit.id!r} has no text and no stored token vectors to rerank with"
                )
            ids.append(hit.id)
            texts.append(hit.text)
        return ids, texts

    def _kept(self, ids: list[str], matrices: list[Vectors]) -> dict[str, Vectors]:
        """Token vectors of unindexed hits: stored when caching, else returned for one use."""
        if self.cache:
            if ids:
                self.store.put(ids, matrices)
            return {}
        return dict(zip(ids, matrices))

    def _score(
        self, query_tokens: Vectors, hits: list[Hit], extra: dict[str, Vectors]
    ) -> list[Hit]:
        stored = [h.id for h in hits if h.id not in extra]
        maxsim: dict[str, float] = {}
        if stored:
            maxsim.update(zip(stored, self.store.maxsim(query_tokens, stored).tolist()))
        for id_, matrix in extra.items():
            maxsim[id_] = float((query_tokens @ matrix.T).max(axis=1).sum())
        raw = [maxsim[h.id] for h in hits]
        if self.weight < 1.0:
            sim_n = normalize(raw, self.normalization)
            prior_n = normalize([h.score for h in hits], self.normalization)
            final = [self.weight * s + (1 - self.weight) * p for s, p in zip(sim_n, prior_n)]
        else:
            final = raw
        out = [
            Hit(
                id=h.id,
                score=score,
                text=h.text,
                metadata=dict(h.metadata),
                explain={**h.explain, "maxsim": m, "previous_score": h.score},
            )
            for h, m, score in zip(hits, raw, final)
        ]
        # stable on the incoming order for ties, which keeps the first stage's preference
        order = sorted(range(len(out)), key=lambda i: (-out[i].score, i))
        return [out[i] for i in order]

    def _rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        query_tokens = self.token_embedder.embed_tokens([query], purpose="query")[0]
        ids, texts = self._missing(hits)
        matrices = self.token_embedder.embed_tokens(texts, purpose="document") if ids else []
        return self._score(query_tokens, hits, self._kept(ids, matrices))

    async def _rerank_async(self, query: str, hits: list[Hit]) -> list[Hit]:
        query_tokens = (await self.token_embedder.embed_tokens_async([query], purpose="query"))[0]
        ids, texts = self._missing(hits)
        matrices = []
        if ids:
            matrices = await self.token_embedder.embed_tokens_async(texts, purpose="document")
        return self._score(query_tokens, hits, self._kept(ids, matrices))
