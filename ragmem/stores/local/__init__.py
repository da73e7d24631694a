"""The built-in numpy vector store."""

from ragmem.stores.local.store import LocalVectorStore

__all__ = ["LocalVectorStore"]
