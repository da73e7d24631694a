"""Chunkers: one interface, ``chunk(document) -> list[Chunk]``, exact limits and offsets.

Every chunker takes ``size``, ``overlap`` and ``unit`` ("tokens" or "chars"), so they
are interchangeable; see ``ragmem.chunking.base`` for the exact contract.
"""

from ragmem.chunking.base import Chunker
from ragmem.chunking.code import CodeChunker
from ragmem.chunking.levels import Layout
from ragmem.chunking.markdown import MarkdownChunker
from ragmem.chunking.recursive import RecursiveChunker
from ragmem.chunking.semantic import SemanticChunker
from ragmem.chunking.sentences import SentenceChunker, sentence_spans
from ragmem.chunking.tokens import TokenChunker

__all__ = [
    "Chunker",
    "CodeChunker",
    "Layout",
    "MarkdownChunker",
    "RecursiveChunker",
    "SemanticChunker",
    "SentenceChunker",
    "TokenChunker",
    "sentence_spans",
]
