"""The pipeline's default parts, resolved lazily so optional extras load only when used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ragmem.errors import ConfigurationError
from ragmem.retrievers.base import Retriever
from ragmem.types import Chunk, Document

if TYPE_CHECKING:
    from ragmem.embedders.base import Embedder
    from ragmem.filters import Filter
    from ragmem.stores.base import VectorStore
    from ragmem.tokens import Tokenizer
    from ragmem.types import Hit

__all__ = [
    "DEFAULT_EMBEDDER",
    "RETRIEVER_NAMES",
    "Chunker",
    "build_retriever",
    "default_chunker",
    "default_tokenizer",
]

DEFAULT_EMBEDDER = "hashing"
RETRIEVER_NAMES = ("dense",)


class Chunker(Protocol):
    """Anything that splits a document into chunks with exact character offsets."""

    def chunk(self, document: Document) -> list[Chunk]:
        """Chunks of ``document`` with ``document.text[start:end] == chunk.text``."""
        ...


class _BoundaryChunker:
    """Windows of at most ``size`` characters, ending at a paragraph, sentence or word break."""

    def __init__(self, size: int = 1200) -> None:
        self.size = size

    def chunk(self, document: Document) -> list[Chunk]:
        text, start = document.text, 0
        out: list[Chunk] = []
        while start < len(text):
            end = min(start + self.size, len(text))
            if end < len(text):
                window = text[start:end]
                for sep in ("\n\n", ". ", "\n", " "):
                    cut = window.rfind(sep)
                    if cut > 0:
                        end = start + cut + len(sep)
                        break
            piece = text[start:end]
            if piece.strip():
                out.append(
                    Chunk(
                        id=f"{document.id}#{len(out)}",
                        doc_id=document.id,
                        text=piece,
                        start=start,
                        end=end,
                        index=len(out),
                        metadata=dict(document.metadata),
                    )
                )
            start = end
        return out


def default_chunker() -> Chunker:
    """The chunker a pipeline uses when none is given."""
    return _BoundaryChunker()


def default_tokenizer() -> Tokenizer:
    """The tokenizer that measures context budgets when none is given."""
    from ragmem.tokens import WhitespaceTokenizer

    return WhitespaceTokenizer()


class _DenseRetriever(Retriever):
    def __init__(self, embedder: Embedder, store: VectorStore) -> None:
        self.embedder = embedder
        self.store = store

    def _retrieve(self, query: str, k: int, where: Filter | None) -> list[Hit]:
        vector = self.embedder.embed([query], purpose="query")
        return self.store.search(vector, k, where=where)[0]


def build_retriever(name: str, *, embedder: Embedder, store: VectorStore, **_: Any) -> Retriever:
    """The retriever called ``name`` over the pipeline's embedder, store and keyword index."""
    if name == "dense":
        return _DenseRetriever(embedder, store)
    raise ConfigurationError(f"unknown retriever {name!r}; choose one of {RETRIEVER_NAMES}")
