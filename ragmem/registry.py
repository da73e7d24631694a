"""Backends by name: built-ins as import strings, third-party plugins through entry points.

A plugin package registers like a built-in::

    [project.entry-points."ragmem.embedders"]
    my-model = "my_package.embedder:MyEmbedder"
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal, overload

from ragmem.errors import ConfigurationError, UnknownBackendError

if TYPE_CHECKING:
    from ragmem.embedders.base import Embedder
    from ragmem.llms.base import LLM
    from ragmem.retrievers.base import Retriever
    from ragmem.stores.base import VectorStore

__all__ = [
    "backend_names",
    "get_embedder",
    "get_llm",
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
# The interface every backend of a kind implements, checked when it is loaded.
_BASES: dict[str, str] = {
    "embedders": "ragmem.embedders.base:Embedder",
    "stores": "ragmem.stores.base:VectorStore",
    "retrievers": "ragmem.retrievers.base:Retriever",
    "llms": "ragmem.llms.base:LLM",
}


def _plugins(kind: str) -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=f"ragmem.{kind}")}


def _import(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def backend_names(kind: Kind) -> list[str]:
    """Every name registered for ``kind``: built-ins and installed plugins."""
    return sorted({**_plugins(kind), **_BUILTINS[kind]})


@overload
def load_backend(kind: Literal["embedders"], name: str) -> type[Embedder]: ...
@overload
def load_backend(kind: Literal["stores"], name: str) -> type[VectorStore]: ...
@overload
def load_backend(kind: Literal["retrievers"], name: str) -> type[Retriever]: ...
@overload
def load_backend(kind: Literal["llms"], name: str) -> type[LLM]: ...
def load_backend(kind: Kind, name: str) -> type[Any]:
    """The class registered under ``name`` (imports only that backend's module).

    Raises:
        UnknownBackendError: nothing is registered under ``name``.
        ConfigurationError: what is registered does not implement the kind's interface.

    Example:
        >>> load_backend("embedders", "hashing").__name__
        'HashingEmbedder'
    """
    target = _BUILTINS[kind].get(name) or _plugins(kind).get(name)
    if target is None:
        raise UnknownBackendError(kind.rstrip("s"), name, available=backend_names(kind))
    backend = _import(target)
    base = _import(_BASES[kind])
    if not (isinstance(backend, type) and issubclass(backend, base)):
        raise ConfigurationError(
            f"{kind.rstrip('s')} {name!r} ({target}) is not a subclass of {base.__name__}"
        )
    return backend


def get_embedder(name: str, **options: Any) -> Embedder:
    """Build the embedder registered under ``name`` with ``options``.

    Example:
        >>> get_embedder("hashing", dimensions=8).dimensions
        8
    """
    return load_backend("embedders", name)(**options)


def get_store(name: str, **options: Any) -> VectorStore:
    """Build the vector store registered under ``name`` with ``options``."""
    return load_backend("stores", name)(**options)


def get_retriever(name: str, **options: Any) -> Retriever:
    """Build the retriever registered under ``name`` with ``options``."""
    return load_backend("retrievers", name)(**options)


def get_llm(name: str, **options: Any) -> LLM:
    """Build the chat model registered under ``name`` with ``options``."""
    return load_backend("llms", name)(**options)
