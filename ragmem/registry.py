"""Backends by name: built-ins as import strings, third-party plugins through entry points.

A plugin package registers like a built-in::

    [project.entry-points."ragmem.embedders"]
    my-model = "my_package.embedder:MyEmbedder"
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Literal

from ragmem.errors import UnknownBackendError

__all__ = [
    "backend_names",
    "get_embedder",
    "get_retriever",
    "get_store",
    "load_backend",
]

Kind = Literal["embedders", "stores", "retrievers", "llms"]

_BUILTINS: dict[str, dict[str, str]] = {
    "embedders": {
        "cohere": "ragmem.embedders.cohere:CohereEmbedder",
        "hashing": "ragmem.embedders.hashing:HashingEmbedder",
        "local": "ragmem.embedders.local:LocalEmbedder",
        "openai": "ragmem.embedders.openai:OpenAIEmbedder",
    },
    "stores": {
        "chroma": "ragmem.stores.chroma:ChromaVectorStore",
        "local": "ragmem.stores.local:LocalVectorStore",
        "qdrant": "ragmem.stores.qdrant:QdrantVectorStore",
    },
    "retrievers": {
        "bm25": "ragmem.retrievers.bm25:BM25Retriever",
        "dense": "ragmem.retrievers.dense:DenseRetriever",
        "hybrid": "ragmem.retrievers.hybrid:HybridRetriever",
    },
    "llms": {
        "cohere": "ragmem.llms.cohere:CohereChat",
        "openai": "ragmem.llms.openai:OpenAIChat",
    },
}


def _plugins(kind: str) -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=f"ragmem.{kind}")}


def backend_names(kind: Kind) -> list[str]:
    """Every name registered for ``kind``: built-ins and installed plugins."""
    return sorted({**_plugins(kind), **_BUILTINS[kind]})


def load_backend(kind: Kind, name: str) -> Any:
    """The class registered under ``name`` (imports only that backend's module)."""
    target = _BUILTINS[kind].get(name) or _plugins(kind).get(name)
    if target is None:
        raise UnknownBackendError(kind.rstrip("s"), name, available=backend_names(kind))
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def get_embedder(name: str, **options: Any) -> Any:
    """Build the embedder registered under ``name`` with ``options``."""
    return load_backend("embedders", name)(**options)


def get_store(name: str, **options: Any) -> Any:
    """Build the vector store registered under ``name`` with ``options``."""
    return load_backend("stores", name)(**options)


def get_retriever(name: str, **options: Any) -> Any:
    """Build the retriever registered under ``name`` with ``options``."""
    return load_backend("retrievers", name)(**options)
