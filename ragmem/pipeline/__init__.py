"""The RAG pipeline: ingestion, retrieval, context assembly and answers with citations."""

from ragmem.pipeline.answer import Answer, AnswerStream
from ragmem.pipeline.rag import RAGPipeline

__all__ = ["Answer", "AnswerStream", "RAGPipeline"]
