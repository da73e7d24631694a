"""The pipeline's default parts, resolved lazily so optional extras load only when used."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from ragmem.errors import ConfigurationError

if TYPE_CHECKING:
    from ragmem.embedders.base import Embedder
    from ragmem.retrievers.base import Reranker, Retriever
    from ragmem.retrievers.bm25 import BM25Retriever
    from ragmem.stores.base import VectorStore
    from ragmem.tokens import Tokenizer
    from ragmem.types import Chunk, Document

__all__ = [
    "DEFAULT_EMBEDDER",
    "RETRIEVER_NAMES",
    "Chunker",
    "build_reranker",
    "build_retriever",
    "chunker_for",
    "default_chunker",
    "default_tokenizer",
    "new_keyword_index",
]

DEFAULT_EMBEDDER = "local"
RETRIEVER_NAMES = ("hybrid", "rrf", "dense", "bm25")
# The hybrid defaults chosen by cross-validation in ragmem.eval.configs (HYBRID_DEFAULTS);
# repeated here so that building a pipeline does not import the evaluation code.
HYBRID: dict[str, Any] = {"fusion": "minmax", "weights": [0.55, 0.45], "depth": 1000}

# Late-interaction reranking as evaluated in ragmem.eval.configs (RERANK_DEFAULTS).
RERANK: dict[str, Any] = {"depth": 50, "weight": 0.3, "normalization": "zscore", "encoding": "int4"}
RERANKER_NAMES = ("late-interaction", "cohere")

# BM25 stopwords of the pipeline's keyword index (see TextAnalyzer)
STOPWORDS = "english-full"

CHUNK_TOKENS = 256
CHUNK_OVERLAP_TOKENS = 32
CHUNK_CHARS = 1000

log = logging.getLogger("ragmem.pipeline")


class Chunker(Protocol):
    """Anything that splits a document into chunks with exact character offsets."""

    def chunk(self, document: Document) -> list[Chunk]:
        """Chunks of ``document`` with ``document.text[start:end] == chunk.text``."""
        ...


def _chunk_settings(embedder: Embedder) -> dict[str, Any]:
    tokenizer_path = getattr(embedder, "tokenizer_path", None)
    window = getattr(embedder, "max_tokens", None)
    if tokenizer_path is not None and isinstance(window, int):
        from ragmem.tokens import HuggingFaceTokenizer

        size = min(CHUNK_TOKENS, window - 2)  # the window includes [CLS] and [SEP]
        return {
            "size": size,
            "overlap": min(CHUNK_OVERLAP_TOKENS, size // 4),
            "unit": "tokens",
            "tokenizer": HuggingFaceTokenizer(tokenizer_path),
        }
    return {"size": CHUNK_CHARS, "overlap": CHUNK_CHARS // 10, "unit": "chars"}


def default_chunker(embedder: Embedder) -> Chunker:
    """The chunker a pipeline uses when none is given.

    For an embedder with a known tokenizer and window (the local model), chunks of at
    most 256 of its tokens, and never more than the window minus the two special tokens,
    overlapping by 32, so no chunk is truncated when embedded; otherwise chunks of at
    most 1,000 characters overlapping by 100. Both cut at paragraph, line, sentence and
    word boundaries first (``RecursiveChunker``).
    """
    from ragmem.chunking import RecursiveChunker

    return RecursiveChunker(**_chunk_settings(embedder))


def chunker_for(suffix: str, embedder: Embedder, fallback: Chunker) -> Chunker:
    """The default chunker for a file type, of the same size as ``default_chunker``'s.

    Markdown is cut at headings (``MarkdownChunker``, headings in metadata), source code
    at definitions (``CodeChunker``, symbols in metadata); everything else uses
    ``fallback``.
    """
    from ragmem.ingest import CODE_SUFFIXES, MARKDOWN_SUFFIXES

    suffix = suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        from ragmem.chunking import MarkdownChunker

        return MarkdownChunker(**_chunk_settings(embedder))
    if suffix in CODE_SUFFIXES:
        from ragmem.chunking import CodeChunker

        return CodeChunker(**_chunk_settings(embedder), language=CODE_SUFFIXES[suffix])
    return fallback


def default_tokenizer(model: str | None = None) -> Tokenizer:
    """The tokenizer that measures context budgets when none is given.

    With a model name, the one that model counts with (``ragmem.tokens``). Without
    one, OpenAI's o200k_base when tiktoken is installed, else the local model's
    tokenizer, else whitespace-separated words.
    """
    from ragmem.errors import MissingDependencyError
    from ragmem.tokens import (
        TiktokenTokenizer,
        WhitespaceTokenizer,
        local_tokenizer,
        tokenizer_for_model,
    )

    if model is not None:
        return tokenizer_for_model(model)
    try:
        return TiktokenTokenizer("o200k_base")
    except (MissingDependencyError, ImportError):
        pass
    try:
        return local_tokenizer()
    except (MissingDependencyError, ImportError):
        return WhitespaceTokenizer()


def new_keyword_index() -> BM25Retriever:
    """An empty BM25 index; it stems (Snowball) when ``ragmem[bm25]`` is installed and
    drops English stopwords including question words (``"english-full"``)."""
    from ragmem.retrievers.analysis import TextAnalyzer
    from ragmem.retrievers.bm25 import BM25Retriever

    # questions are what a pipeline is asked: "how do I ..." must not decide the ranking
    try:
        analyzer = TextAnalyzer(stopwords=STOPWORDS)
    except ImportError:
        # stemming is a refinement; the analyzer settings are saved with the index,
        # so an index keeps the analyzer it was built with
        log.info("PyStemmer is not installed (ragmem[bm25]); BM25 indexes words unstemmed")
        analyzer = TextAnalyzer(stem=False, stopwords=STOPWORDS)
    return BM25Retriever(tokenizer=analyzer)


def build_retriever(
    name: str, *, embedder: Embedder, store: VectorStore, keyword: BM25Retriever | None
) -> Retriever:
    """The retriever called ``name`` over the pipeline's embedder, store and keyword index.

    ``hybrid`` fuses BM25 and dense retrieval with the cross-validated defaults of
    ``ragmem.eval`` (min-max normalised scores, equal weights); ``rrf`` uses reciprocal
    rank fusion; ``dense`` and ``bm25`` use one of them alone.
    """
    from ragmem.retrievers.dense import DenseRetriever
    from ragmem.retrievers.hybrid import HybridRetriever

    if name not in RETRIEVER_NAMES:
        raise ConfigurationError(f"unknown retriever {name!r}; choose one of {RETRIEVER_NAMES}")
    dense = DenseRetriever(embedder, store)
    if name == "dense":
        return dense
    if keyword is None:
        raise ConfigurationError(f"retriever {name!r} needs the keyword index (keyword=True)")
    if name == "bm25":
        return keyword
    if name == "rrf":
        return HybridRetriever({"bm25": keyword, "dense": dense}, fusion="rrf", rrf_k=60)
    return HybridRetriever({"bm25": keyword, "dense": dense}, **HYBRID)


def build_reranker(name: str, *, embedder: Embedder) -> Reranker:
    """The reranker called ``name``: ``"late-interaction"`` (MaxSim over the embedder's
    token vectors, blended with the first-stage score) or ``"cohere"`` (the rerank API).
    """
    if name == "late-interaction":
        from ragmem.embedders.base import TokenEmbedder
        from ragmem.retrievers.rerank import LateInteractionReranker

        if not isinstance(embedder, TokenEmbedder):
            raise ConfigurationError(
                f"late-interaction reranking needs token vectors; {embedder.name} has none"
            )
        return LateInteractionReranker(
            embedder,
            encoding=RERANK["encoding"],
            weight=RERANK["weight"],
            normalization=RERANK["normalization"],
        )
    if name == "cohere":
        from ragmem.retrievers.cohere import CohereReranker

        return CohereReranker()
    raise ConfigurationError(f"unknown reranker {name!r}; choose one of {RERANKER_NAMES}")
