"""Contract suites that every adapter, built-in or plugin, must pass (needs pytest)."""

from ragmem.testing.embedders import EmbedderContract
from ragmem.testing.stores import VectorStoreContract

__all__ = ["EmbedderContract", "VectorStoreContract"]
