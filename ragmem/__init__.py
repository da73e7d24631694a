"""ragmem: retrieval-augmented generation and agent memory, offline by default."""

from typing import TYPE_CHECKING as _TYPE_CHECKING

from ragmem._util import lazy_exports as _lazy_exports
from ragmem.embedders import Embedder, HashingEmbedder, TokenEmbedder
from ragmem.errors import (
    BackendError,
    BackendHTTPError,
    BackendResponseError,
    BackendUnavailableError,
    ConfigurationError,
    CorruptIndexError,
    DimensionMismatchError,
    InvalidFilterError,
    InvalidInputError,
    InvalidVectorError,
    MissingDependencyError,
    NotFoundError,
    RagmemError,
    RateLimitError,
    StorageError,
    StoreLockedError,
    TextTooLongError,
    UnknownBackendError,
)
from ragmem.filters import F, parse_filter
from ragmem.llms import LLM, Message
from ragmem.retrievers.base import Reranker, Retriever
from ragmem.stores import LocalVectorStore, VectorStore
from ragmem.types import Chunk, Document, Hit, Record

if _TYPE_CHECKING:  # what type checkers see; at run time these load on first use
    from ragmem.context import ContextBuilder
    from ragmem.embedders.cache import CachedEmbedder
    from ragmem.pipeline import RAGPipeline
    from ragmem.retrievers import (
        BM25Retriever,
        DenseRetriever,
        HybridRetriever,
        LateInteractionReranker,
        MMRRetriever,
        RerankRetriever,
    )

__version__ = "0.1.0"

__all__ = [
    "LLM",
    "BM25Retriever",
    "BackendError",
    "BackendHTTPError",
    "BackendResponseError",
    "BackendUnavailableError",
    "CachedEmbedder",
    "Chunk",
    "ConfigurationError",
    "ContextBuilder",
    "CorruptIndexError",
    "DenseRetriever",
    "DimensionMismatchError",
    "Document",
    "Embedder",
    "F",
    "HashingEmbedder",
    "Hit",
    "HybridRetriever",
    "InvalidFilterError",
    "InvalidInputError",
    "InvalidVectorError",
    "LateInteractionReranker",
    "LocalVectorStore",
    "MMRRetriever",
    "Message",
    "MissingDependencyError",
    "NotFoundError",
    "RAGPipeline",
    "RagmemError",
    "RateLimitError",
    "Record",
    "RerankRetriever",
    "Reranker",
    "Retriever",
    "StorageError",
    "StoreLockedError",
    "TextTooLongError",
    "TokenEmbedder",
    "UnknownBackendError",
    "VectorStore",
    "__version__",
    "parse_filter",
]

# The pipeline, context assembly and concrete retrievers load on first use, which keeps
# ``import ragmem`` fast (their modules pull in the chunkers, tokenizers, BM25 and sqlite3).
_LAZY = {
    "CachedEmbedder": "ragmem.embedders.cache",
    "BM25Retriever": "ragmem.retrievers.bm25",
    "ContextBuilder": "ragmem.context",
    "DenseRetriever": "ragmem.retrievers.dense",
    "HybridRetriever": "ragmem.retrievers.hybrid",
    "LateInteractionReranker": "ragmem.retrievers.rerank",
    "MMRRetriever": "ragmem.retrievers.mmr",
    "RAGPipeline": "ragmem.pipeline",
    "RerankRetriever": "ragmem.retrievers.rerank",
}

__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, __all__)
