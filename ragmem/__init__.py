"""ragmem: retrieval-augmented generation and agent memory, offline by default."""

from ragmem.context import ContextBuilder
from ragmem.embedders import CachedEmbedder, Embedder, HashingEmbedder, TokenEmbedder
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
from ragmem.pipeline import RAGPipeline
from ragmem.retrievers import (
    BM25Retriever,
    DenseRetriever,
    HybridRetriever,
    LateInteractionReranker,
    MMRRetriever,
    Reranker,
    RerankRetriever,
    Retriever,
)
from ragmem.stores import LocalVectorStore, VectorStore
from ragmem.types import Chunk, Document, Hit, Record

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
