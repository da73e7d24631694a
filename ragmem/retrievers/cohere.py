"""CohereReranker: reorders hits with Cohere's v2 rerank API (``ragmem[cohere]``)."""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

from ragmem._util import batched
from ragmem.errors import BackendResponseError, ConfigurationError, InvalidInputError
from ragmem.remote.cohere import CohereClients, request_options
from ragmem.remote.resilience import RetryPolicy
from ragmem.retrievers.base import Reranker

if TYPE_CHECKING:
    from collections.abc import Sequence

    import cohere

    from ragmem.types import Hit

__all__ = ["CohereReranker"]

_MAX_DOCUMENTS = 1000  # Cohere's recommended maximum per request


class CohereReranker(Reranker):
    """Scores each hit's text against the query with a Cohere rerank model.

    The new relevance score (0..1, higher is better) replaces ``score``; the old
    score and rank go into ``explain["rerank"]``. Hits without text are rejected.
    More than ``max_documents_per_request`` hits are scored in several requests
    (relevance scores are per query and document, so they merge exactly).

    Example:
        >>> CohereReranker("rerank-v3.5").name
        'cohere:rerank-v3.5'
    """

    def __init__(
        self,
        model: str = "rerank-v3.5",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: cohere.ClientV2 | None = None,
        async_client: cohere.AsyncClientV2 | None = None,
        max_documents_per_request: int = _MAX_DOCUMENTS,
        max_tokens_per_doc: int | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        requests_per_minute: float | None = None,
        max_concurrency: int = 8,
    ) -> None:
        if max_documents_per_request < 1:
            raise ConfigurationError("max_documents_per_request must be >= 1")
        if max_tokens_per_doc is not None and max_tokens_per_doc < 1:
            raise ConfigurationError("max_tokens_per_doc must be >= 1")
        self.model = model
        self.max_documents_per_request = max_documents_per_request
        self.max_tokens_per_doc = max_tokens_per_doc
        self.base_url = base_url
        self.name = f"cohere:{model}"
        self._clients = CohereClients(
            self.name,
            api_key=api_key,
            base_url=base_url,
            client=client,
            async_client=async_client,
            retry=retry,
            timeout=timeout,
            requests_per_minute=requests_per_minute,
            max_concurrency=max_concurrency,
        )

    def __repr__(self) -> str:
        return f"CohereReranker(model={self.model!r}, base_url={self.base_url!r})"

    # request and response, shared by sync and async -----------------------------------

    def _texts(self, hits: list[Hit]) -> list[str]:
        texts = []
        for i, hit in enumerate(hits):
            if not isinstance(hit.text, str) or not hit.text.strip():
                raise InvalidInputError(f"hits[{i}] (id {hit.id!r}) has no text to rerank")
            texts.append(hit.text)
        return texts

    def _request(self, query: str, documents: Sequence[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "query": query, "documents": list(documents)}
        if self.max_tokens_per_doc is not None:
            body["max_tokens_per_doc"] = self.max_tokens_per_doc
        return body

    def _scores(self, response: object, count: int) -> list[float]:
        results = getattr(response, "results", None)
        if not isinstance(results, list) or len(results) != count:
            got = len(results) if isinstance(results, list) else type(results).__name__
            raise BackendResponseError(
                f"returned {got} results for {count} documents", backend=self.name
            )
        scores: list[float | None] = [None] * count
        for item in results:
            index = getattr(item, "index", None)
            score = getattr(item, "relevance_score", None)
            if not isinstance(index, int) or not 0 <= index < count or scores[index] is not None:
                raise BackendResponseError(f"bad result index {index!r}", backend=self.name)
            if not isinstance(score, (int, float)) or not math.isfinite(score):
                raise BackendResponseError(f"bad relevance score {score!r}", backend=self.name)
            scores[index] = float(score)
        return [s for s in scores if s is not None]

    def _ranked(self, hits: list[Hit], scores: list[float]) -> list[Hit]:
        order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))
        out = []
        for rank, i in enumerate(order):
            hit = hits[i]
            explain = {
                **hit.explain,
                "rerank": {
                    "model": self.name,
                    "score": scores[i],
                    "rank": rank,
                    "previous_score": hit.score,
                    "previous_rank": i,
                },
            }
            out.append(hit.model_copy(update={"score": scores[i], "explain": explain}))
        return out

    # transport ------------------------------------------------------------------------

    def _score(self, query: str, documents: Sequence[str]) -> list[float]:
        body = self._request(query, documents)
        return self._clients.call(
            lambda co, timeout: self._scores(
                co.rerank(**body, request_options=request_options(timeout)), len(documents)
            )
        )

    async def _score_async(self, query: str, documents: Sequence[str]) -> list[float]:
        body = self._request(query, documents)

        async def send(co: cohere.AsyncClientV2, timeout: float) -> list[float]:
            reply = await co.rerank(**body, request_options=request_options(timeout))
            return self._scores(reply, len(documents))

        return await self._clients.call_async(send, lambda: self._score(query, documents))

    def _rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        batches = batched(self._texts(hits), self.max_documents_per_request)
        return self._ranked(hits, [s for d in batches for s in self._score(query, d)])

    async def _rerank_async(self, query: str, hits: list[Hit]) -> list[Hit]:
        batches = batched(self._texts(hits), self.max_documents_per_request)
        parts = await asyncio.gather(*(self._score_async(query, d) for d in batches))
        return self._ranked(hits, [s for part in parts for s in part])
