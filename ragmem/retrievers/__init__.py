"""Retrievers: dense, BM25, hybrid fusion, reranking, MMR."""

from typing import TYPE_CHECKING

from ragmem._util import lazy_exports
from ragmem.retrievers.base import Reranker, Retriever

# eager: the function shares its module's name, so a lazy lookup would find the module
from ragmem.retrievers.mmr import MMRRetriever, mmr

if TYPE_CHECKING:  # what type checkers see; at run time these load on first use
    from ragmem.retrievers.analysis import Analyzer, TextAnalyzer
    from ragmem.retrievers.bm25 import BM25Retriever
    from ragmem.retrievers.dense import DenseRetriever
    from ragmem.retrievers.hybrid import HybridRetriever
    from ragmem.retrievers.rerank import LateInteractionReranker, RerankRetriever
    from ragmem.retrievers.tokenvectors import TokenVectorStore

__all__ = [
    "Analyzer",
    "BM25Retriever",
    "DenseRetriever",
    "HybridRetriever",
    "LateInteractionReranker",
    "MMRRetriever",
    "RerankRetriever",
    "Reranker",
    "Retriever",
    "TextAnalyzer",
    "TokenVectorStore",
    "mmr",
]

# Concrete retrievers load on first use: importing the interfaces stays cheap.
_LAZY = {
    "BM25Retriever": "ragmem.retrievers.bm25",
    "DenseRetriever": "ragmem.retrievers.dense",
    "HybridRetriever": "ragmem.retrievers.hybrid",
    "LateInteractionReranker": "ragmem.retrievers.rerank",
    "RerankRetriever": "ragmem.retrievers.rerank",
    "TextAnalyzer": "ragmem.retrievers.analysis",
    "TokenVectorStore": "ragmem.retrievers.tokenvectors",
    "Analyzer": "ragmem.retrievers.analysis",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
