"""DenseRetriever: embed the query, search a vector store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ragmem.retrievers.base import Retriever

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ragmem.embedders.base import Embedder
    from ragmem.filters import Filter
    from ragmem.stores.base import VectorStore
    from ragmem.types import Hit, Metadata

__all__ = ["DenseRetriever"]


class DenseRetriever(Retriever):
    """Vector search: the query is embedded with ``purpose="query"`` and searched in ``store``.

    Args:
        embedder: turns texts into vectors; its dimensions must match the store's.
        store: any ``VectorStore``; filters are applied by the store before top-k.

    Example:
        >>> from ragmem import HashingEmbedder, LocalVectorStore
        >>> e = HashingEmbedder(dimensions=64)
        >>> dense = DenseRetriever(e, LocalVectorStore(dimensions=64))
        >>> dense.add(["a", "b"], ["red apples", "tax law"])
        >>> dense.retrieve("apples", k=1)[0].id
        'a'
    """

    def __init__(self, embedder: Embedder, store: VectorStore) -> None:
        self.embedder = embedder
        self.store = store

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadata: Sequence[Metadata] | None = None,
    ) -> None:
        """Embed ``texts`` as documents and upsert them into the store."""
        vectors = self.embedder.embed(texts, purpose="document")
        self.store.upsert(ids, vectors, texts=list(texts), metadata=metadata)

    def delete(self, ids: Sequence[str]) -> int:
        """Delete documents from the store by id; returns how many existed."""
        return self.store.delete(ids)

    def _retrieve(self, query: str, k: int, where: Filter | None) -> list[Hit]:
        vector = self.embedder.embed([query], purpose="query")
        return _explained(self.store.search(vector, k, where=where)[0])

    async def _retrieve_async(self, query: str, k: int, where: Filter | None) -> list[Hit]:
        vector = await self.embedder.embed_async([query], purpose="query")
        hits = await self.store.search_async(vector, k, where=where)
        return _explained(hits[0])

    def __repr__(self) -> str:
        return f"DenseRetriever({self.embedder!r}, {type(self.store).__name__})"


def _explained(hits: list[Hit]) -> list[Hit]:
    for hit in hits:
        hit.explain.setdefault("dense", hit.score)
    return hits
