"""Embedders: turn texts into vectors. Adapters with SDKs load only when imported by name."""

from ragmem.embedders.base import Embedder, TokenEmbedder
from ragmem.embedders.cache import CachedEmbedder
from ragmem.embedders.hashing import HashingEmbedder

__all__ = ["CachedEmbedder", "Embedder", "HashingEmbedder", "TokenEmbedder"]
