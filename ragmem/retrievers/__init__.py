"""Retrievers: dense, BM25, hybrid fusion, reranking, MMR."""

from ragmem.retrievers.base import Reranker, Retriever

__all__ = ["Reranker", "Retriever"]
