"""ragmem as a LangChain backend: embeddings both ways, a ``VectorStore`` and a retriever.

Needs the ``langchain`` extra (``pip install 'ragmem[langchain]'``, langchain-core only).
LangChain metadata filters passed as ``filter=`` are ragmem's dict filter form (the same
``$eq``/``$in``/``$gte``/... operators, see ``ragmem.filters``); a ragmem filter tree works too.

Example:
    >>> from ragmem.embedders import HashingEmbedder
    >>> from ragmem.integrations.langchain import RagmemEmbeddings, RagmemVectorStore
    >>> store = RagmemVectorStore(RagmemEmbeddings(HashingEmbedder(dimensions=64)))
    >>> store.add_texts(["cats purr", "dogs bark"], [{"kind": "cat"}, {"kind": "dog"}],
    ...                 ids=["c", "d"])
    ['c', 'd']
    >>> [d.id for d in store.similarity_search("dogs bark", k=1, filter={"kind": "dog"})]
    ['d']
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ragmem.errors import InvalidInputError, MissingDependencyError, NotFoundError
from ragmem.filters import Filter, FilterLike, parse_filter
from ragmem.integrations._langchain_embeddings import LangChainEmbedder, RagmemEmbeddings
from ragmem.retrievers.base import Retriever
from ragmem.retrievers.mmr import mmr
from ragmem.stores.base import VectorStore as RagmemStore
from ragmem.types import Hit, Metadata, Record

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.vectorstores import VectorStore
    from pydantic import ConfigDict
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(package="langchain-core", extra="langchain") from exc

if TYPE_CHECKING:
    from collections.abc import Callable

    from ragmem.types import Vectors

__all__ = ["LangChainEmbedder", "RagmemEmbeddings", "RagmemRetriever", "RagmemVectorStore"]

_Metadatas = list[dict[str, Any]] | None
_Ids = list[str] | None


def _relevance(metric: str) -> Callable[[float], float]:
    if metric == "l2":
        # ragmem's l2 score is the negated squared distance; LangChain's euclidean
        # relevance assumes unit vectors (distance 0..sqrt(2) maps to 1..0).
        return lambda score: _unit(1.0 - float(np.sqrt(max(-score, 0.0))) / float(np.sqrt(2.0)))
    # cosine (and dot on unit vectors) is already a similarity: 1 is identical. Clamped
    # because float32 overshoots 1 by an ulp and opposite vectors are simply irrelevant.
    return _unit


def _unit(score: float) -> float:
    return min(1.0, max(0.0, score))


class RagmemVectorStore(VectorStore):
    """A LangChain ``VectorStore`` over any ragmem ``VectorStore`` and LangChain embeddings.

    Ids passed to ``add_texts``/``add_documents`` (or set on ``Document.id``) are kept;
    the others get a fresh uuid4. Adding an existing id replaces it whole. Metadata is
    validated by ragmem (flat str/int/float/bool values or lists of them).
    ``similarity_search_with_score`` returns ragmem scores: higher is better.

    Args:
        embedding: LangChain embeddings (wrap a ragmem embedder in ``RagmemEmbeddings``).
        store: the ragmem store; by default an in-memory ``LocalVectorStore`` sized from
            the embedding (a wrapped ragmem embedder's ``dimensions``, else one probe query).
        metric: metric of the default store; ignored when ``store`` is given.
    """

    def __init__(
        self,
        embedding: Embeddings,
        *,
        store: RagmemStore | None = None,
        metric: str = "cosine",
    ) -> None:
        if not isinstance(embedding, Embeddings):
            raise InvalidInputError(
                f"embedding must be a LangChain Embeddings, got {type(embedding).__name__}"
            )
        if store is None:
            from ragmem.stores.local import LocalVectorStore

            if isinstance(embedding, RagmemEmbeddings):
                dimensions = embedding.embedder.dimensions
            else:
                dimensions = len(embedding.embed_query("dimension probe"))
            store = LocalVectorStore(dimensions, metric=RagmemStore._check_metric(metric))
        elif not isinstance(store, RagmemStore):
            raise InvalidInputError(f"store must be a ragmem VectorStore, got {type(store)}")
        self.embedding = embedding
        self.store = store

    @property
    def embeddings(self) -> Embeddings:
        """The embeddings used for texts and queries."""
        return self.embedding

    # -- writing ------------------------------------------------------------------------------

    def _prepare(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None,
        ids: Sequence[str | None] | None,
    ) -> tuple[list[str], list[str], list[Metadata]]:
        text_list = list(texts)
        for i, text in enumerate(text_list):
            if not isinstance(text, str):
                raise InvalidInputError(f"texts[{i}] is {type(text).__name__}, expected str")
        metas: list[Metadata] = [{}] * len(text_list) if metadatas is None else list(metadatas)
        if len(metas) != len(text_list):
            raise InvalidInputError(f"got {len(metas)} metadatas for {len(text_list)} texts")
        id_list = [None] * len(text_list) if ids is None else list(ids)
        if len(id_list) != len(text_list):
            raise InvalidInputError(f"got {len(id_list)} ids for {len(text_list)} texts")
        # Documents without an id get a fresh one, as LangChain's own stores do.
        filled = [str(uuid.uuid4()) if i is None else i for i in id_list]
        return text_list, filled, metas

    def add_texts(
        self, texts: Iterable[str], metadatas: _Metadatas = None, *, ids: _Ids = None, **kwargs: Any
    ) -> list[str]:
        """Embed and store ``texts``; returns their ids (given or generated)."""
        text_list, id_list, metas = self._prepare(texts, metadatas, ids)
        if text_list:
            vectors = np.asarray(self.embedding.embed_documents(text_list), np.float32)
            self.store.upsert(id_list, vectors, text_list, metas)
        return id_list

    async def aadd_texts(
        self, texts: Iterable[str], metadatas: _Metadatas = None, *, ids: _Ids = None, **kwargs: Any
    ) -> list[str]:
        """Async twin of ``add_texts``."""
        text_list, id_list, metas = self._prepare(texts, metadatas, ids)
        if text_list:
            vectors = np.asarray(await self.embedding.aembed_documents(text_list), np.float32)
            await self.store.upsert_async(id_list, vectors, text_list, metas)
        return id_list

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by ids, or by ``filter=`` (exactly one); unknown ids are ignored."""
        self.store.delete(ids, where=kwargs.get("filter"))
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Async twin of ``delete``."""
        await self.store.delete_async(ids, where=kwargs.get("filter"))
        return True

    # -- reading ------------------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The stored documents among ``ids`` (missing and repeated ids are skipped)."""
        wanted = list(dict.fromkeys(ids))
        try:
            records = self.store.get(wanted)
        except NotFoundError as exc:
            missing = set(exc.ids)
            present = [i for i in wanted if i not in missing]
            records = self.store.get(present) if present else []
        return [_record_document(r) for r in records]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Async twin of ``get_by_ids``."""
        wanted = list(dict.fromkeys(ids))
        try:
            records = await self.store.get_async(wanted)
        except NotFoundError as exc:
            missing = set(exc.ids)
            present = [i for i in wanted if i not in missing]
            records = await self.store.get_async(present) if present else []
        return [_record_document(r) for r in records]

    def similarity_search_by_vector_with_score(
        self, embedding: list[float], k: int = 4, filter: FilterLike | None = None
    ) -> list[tuple[Document, float]]:
        """The ``k`` nearest documents to a vector, with ragmem scores (higher is better)."""
        hits = self.store.search(np.asarray(embedding, np.float32), k, where=_where(filter))
        return [(_hit_document(h), h.score) for h in hits[0]]

    async def asimilarity_search_by_vector_with_score(
        self, embedding: list[float], k: int = 4, filter: FilterLike | None = None
    ) -> list[tuple[Document, float]]:
        """Async twin of ``similarity_search_by_vector_with_score``."""
        vector = np.asarray(embedding, np.float32)
        hits = await self.store.search_async(vector, k, where=_where(filter))
        return [(_hit_document(h), h.score) for h in hits[0]]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: FilterLike | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The ``k`` documents most similar to ``query``, with scores, best first."""
        vector = self.embedding.embed_query(query)
        return self.similarity_search_by_vector_with_score(vector, k, filter)

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: FilterLike | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async twin of ``similarity_search_with_score``."""
        vector = await self.embedding.aembed_query(query)
        return await self.asimilarity_search_by_vector_with_score(vector, k, filter)

    def similarity_search(
        self, query: str, k: int = 4, filter: FilterLike | None = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents most similar to ``query``, best first."""
        return [d for d, _ in self.similarity_search_with_score(query, k, filter)]

    async def asimilarity_search(
        self, query: str, k: int = 4, filter: FilterLike | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async twin of ``similarity_search``."""
        return [d for d, _ in await self.asimilarity_search_with_score(query, k, filter)]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: FilterLike | None = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents nearest to a query vector, best first."""
        return [d for d, _ in self.similarity_search_by_vector_with_score(embedding, k, filter)]

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: FilterLike | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async twin of ``similarity_search_by_vector``."""
        pairs = await self.asimilarity_search_by_vector_with_score(embedding, k, filter)
        return [d for d, _ in pairs]

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: FilterLike | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """``k`` documents picked by maximal marginal relevance among the ``fetch_k`` nearest."""
        query = np.asarray(embedding, np.float32)
        hits = self.store.search(query, max(fetch_k, k), where=_where(filter))[0]
        records = self.store.get([h.id for h in hits]) if hits else []
        return _mmr_documents(query, hits, records, k, lambda_mult)

    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: FilterLike | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async twin of ``max_marginal_relevance_search_by_vector``."""
        query = np.asarray(embedding, np.float32)
        hits = (await self.store.search_async(query, max(fetch_k, k), where=_where(filter)))[0]
        records = await self.store.get_async([h.id for h in hits]) if hits else []
        return _mmr_documents(query, hits, records, k, lambda_mult)

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: FilterLike | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """``k`` diverse documents for ``query`` by maximal marginal relevance."""
        vector = self.embedding.embed_query(query)
        return self.max_marginal_relevance_search_by_vector(vector, k, fetch_k, lambda_mult, filter)

    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: FilterLike | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async twin of ``max_marginal_relevance_search``."""
        vector = await self.embedding.aembed_query(query)
        return await self.amax_marginal_relevance_search_by_vector(
            vector, k, fetch_k, lambda_mult, filter
        )

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return _relevance(self.store.metric)

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: _Metadatas = None,
        *,
        ids: _Ids = None,
        **kwargs: Any,
    ) -> RagmemVectorStore:
        """A new store holding ``texts``; ``store=`` and ``metric=`` go to the constructor."""
        vectorstore = cls(embedding, **kwargs)
        vectorstore.add_texts(texts, metadatas, ids=ids)
        return vectorstore

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: _Metadatas = None,
        *,
        ids: _Ids = None,
        **kwargs: Any,
    ) -> RagmemVectorStore:
        """Async twin of ``from_texts``."""
        vectorstore = cls(embedding, **kwargs)
        await vectorstore.aadd_texts(texts, metadatas, ids=ids)
        return vectorstore


def _where(filter: FilterLike | None) -> Filter | None:
    if callable(filter):
        raise InvalidInputError(
            "filter must be a ragmem filter (dict form or tree), not a function"
        )
    return parse_filter(filter)


def _mmr_documents(
    query: Vectors, hits: list[Hit], records: list[Record], k: int, lambda_mult: float
) -> list[Document]:
    if not records:
        return []
    chosen = mmr(query, np.stack([r.vector for r in records]), k, lambda_mult=lambda_mult)
    return [_hit_document(hits[i]) for i in chosen]


def _record_document(record: Record) -> Document:
    return Document(page_content=record.text or "", metadata=dict(record.metadata), id=record.id)


def _hit_document(hit: Hit) -> Document:
    return Document(page_content=hit.text or "", metadata=dict(hit.metadata), id=hit.id)


class RagmemRetriever(BaseRetriever):
    """A LangChain retriever over any ragmem ``Retriever`` (dense, BM25, hybrid, reranked).

    Each hit becomes ``Document(page_content=hit.text, metadata={**hit.metadata,
    "id": hit.id, "score": hit.score}, id=hit.id)``. ``k`` and ``where`` may also be
    given per call: ``retriever.invoke("query", k=10, where={"lang": "en"})``.

    Args:
        retriever: the ragmem retriever.
        k: hits per query.
        where: a ragmem filter (dict form or tree) applied to every query.
        **kwargs: other ``BaseRetriever`` fields (``tags``, ``metadata``).

    Example:
        >>> from ragmem.retrievers.bm25 import BM25Retriever
        >>> bm25 = BM25Retriever()
        >>> bm25.add(["a", "b"], ["cats purr", "dogs bark"])
        >>> [d.id for d in RagmemRetriever(bm25, k=1).invoke("barking dogs")]
        ['b']
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Retriever
    k: int = 4
    where: Filter | None = None

    def __init__(
        self,
        retriever: Retriever,
        *,
        k: int = 4,
        where: FilterLike | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(retriever, Retriever):
            raise InvalidInputError(
                f"retriever must be a ragmem Retriever, got {type(retriever).__name__}"
            )
        _check_k(k)
        super().__init__(retriever=retriever, k=k, where=parse_filter(where), **kwargs)

    def _args(self, k: int | None, where: FilterLike | None) -> tuple[int, Filter | None]:
        k = self.k if k is None else k
        _check_k(k)
        return k, self.where if where is None else parse_filter(where)

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        where: FilterLike | None = None,
    ) -> list[Document]:
        k, tree = self._args(k, where)
        return [_retrieved(h) for h in self.retriever.retrieve(query, k, where=tree)]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        where: FilterLike | None = None,
    ) -> list[Document]:
        k, tree = self._args(k, where)
        hits = await self.retriever.retrieve_async(query, k, where=tree)
        return [_retrieved(h) for h in hits]


def _check_k(k: object) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")


def _retrieved(hit: Hit) -> Document:
    metadata: dict[str, Any] = {**hit.metadata, "id": hit.id, "score": hit.score}
    return Document(page_content=hit.text or "", metadata=metadata, id=hit.id)
