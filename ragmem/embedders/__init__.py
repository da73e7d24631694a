"""Embedders: turn texts into vectors. Adapters with SDKs load only when imported by name."""

from typing import TYPE_CHECKING

from ragmem._util import lazy_exports
from ragmem.embedders.base import Embedder, TokenEmbedder
from ragmem.embedders.hashing import HashingEmbedder

if TYPE_CHECKING:
    from ragmem.embedders.cache import CachedEmbedder

__all__ = ["CachedEmbedder", "Embedder", "HashingEmbedder", "TokenEmbedder"]

# Adapters whose modules import an optional SDK load on first attribute access, so
# ``from ragmem.embedders import LocalEmbedder`` works without importing the SDK up front.
_LAZY = {
    "CachedEmbedder": "ragmem.embedders.cache",  # sqlite3 and hashlib cost import time
    "LocalEmbedder": "ragmem.embedders.local",
    "OpenAIEmbedder": "ragmem.embedders.openai",
    "CohereEmbedder": "ragmem.embedders.cohere",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
