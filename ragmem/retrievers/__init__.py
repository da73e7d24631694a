"""Retrievers: dense, BM25, hybrid fusion, reranking, MMR."""

from ragmem.retrievers.analysis import TextAnalyzer, Tokenizer
from ragmem.retrievers.base import Reranker, Retriever
from ragmem.retrievers.bm25 import BM25Retriever
from ragmem.retrievers.dense import DenseRetriever
from ragmem.retrievers.hybrid import HybridRetriever
from ragmem.retrievers.mmr import MMRRetriever, mmr
from ragmem.retrievers.rerank import LateInteractionReranker, RerankRetriever
from ragmem.retrievers.tokenvectors import TokenVectorStore

__all__ = [
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
    "Tokenizer",
    "mmr",
]
