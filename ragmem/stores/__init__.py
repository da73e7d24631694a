"""Vector stores. The built-in store is always available; adapters load when imported by name."""

from ragmem.stores.base import VectorStore
from ragmem.stores.local import LocalVectorStore

__all__ = ["LocalVectorStore", "VectorStore"]
