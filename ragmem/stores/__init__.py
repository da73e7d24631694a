"""Vector stores. The built-in store is always available; adapters load when imported by name."""

from ragmem._util import lazy_exports
from ragmem.stores.base import VectorStore
from ragmem.stores.local import LocalVectorStore

__all__ = ["LocalVectorStore", "VectorStore"]

# Adapters whose modules import an optional SDK load on first attribute access, so
# ``from ragmem.stores import QdrantVectorStore`` works without importing the SDK up front.
_LAZY = {
    "QdrantVectorStore": "ragmem.stores.qdrant",
    "ChromaVectorStore": "ragmem.stores.chroma",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
