"""ChromaVectorStore: the VectorStore interface on a Chroma collection (in memory, disk, server)."""

from __future__ import annotations

import os
import re
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ragmem.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    MissingDependencyError,
    NotFoundError,
)
from ragmem.stores._translate import simplify
from ragmem.stores._translate_chroma import (
    decode_metadata,
    decode_text,
    encode_metadata,
    to_chroma,
)
from ragmem.stores.base import VectorStore
from ragmem.types import Hit, Record

try:
    import chromadb
    import httpx
    from chromadb.config import Settings
    from chromadb.errors import ChromaError
    from chromadb.errors import NotFoundError as ChromaNotFoundError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(package="chromadb", extra="chroma") from exc

if TYPE_CHECKING:
    from collections.abc import Iterator

    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from ragmem.filters import Filter
    from ragmem.types import Metadata, Metric, Vectors

__all__ = ["ChromaVectorStore"]

_SPACE = {"cosine": "cosine", "dot": "ip", "l2": "l2"}
_BACKEND = "chroma"
_DIMENSIONS_KEY = "ragmem:dimensions"
# How items' metadata is laid out (ragmem/stores/_translate_chroma.py). Layout 1 kept a tag
# list per item; a collection written in another layout would be misread, so it is refused.
_LAYOUT_KEY = "ragmem:layout"
_LAYOUT = 2
# Chroma's own rule for collection names, checked here to fail before any network call
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]")


@contextmanager
def _errors() -> Iterator[None]:
    """Translate chromadb and transport exceptions into ragmem's tree."""
    try:
        yield
    except httpx.TransportError as exc:
        raise BackendUnavailableError(str(exc), backend=_BACKEND) from exc
    except ChromaError as exc:
        raise BackendError(f"{type(exc).__name__}: {exc}", backend=_BACKEND) from exc
    except ValueError as exc:
        # chromadb's HTTP client reports a refused connection as a ValueError
        if "connect" in str(exc).lower():
            raise BackendUnavailableError(str(exc), backend=_BACKEND) from exc
        raise


class ChromaVectorStore(VectorStore):
    """A VectorStore on a Chroma collection: in memory, on disk, or on a Chroma server.

    Vectors are always passed in by ragmem, so chromadb's default embedding function
    (which would download a model) is never used, and telemetry is off on the clients
    this store builds. Metadata is stored with derived fields that make every operator
    of the filter language exact on Chroma (see ``ragmem.stores._translate_chroma``).
    Scores follow the built-in store: cosine similarity, dot product, or the negated
    squared Euclidean distance.

    In-memory stores of one process share chromadb's in-memory system: two of them
    with the same collection name see the same data.

    Args:
        collection: collection name (3-512 characters of ``[a-zA-Z0-9._-]``); created
            when missing, validated when present.
        dimensions: width of every vector.
        metric: ``"cosine"`` (default), ``"dot"`` or ``"l2"``.
        path: directory of an on-disk store (``PersistentClient``).
        host: host of a Chroma server (``HttpClient``), e.g. started with
            ``chroma run --path ./chroma-data --port 8000``.
        port: port of that server (default 8000).
        ssl: use HTTPS to reach the server.
        headers: extra HTTP headers for the server, e.g. an auth token.
        client: a ready chromadb client (used as given, and not closed by ``close``).
        batch_size: items per write request; default: the client's maximum batch size.

    Example:
        >>> import numpy as np
        >>> store = ChromaVectorStore(collection="docs-example", dimensions=2)
        >>> store.upsert(["a", "b"], np.array([[1, 0], [0, 1]], np.float32),
        ...              metadata=[{"lang": "en"}, {"lang": "de"}])
        >>> store.search(np.array([1, 0.2], np.float32), k=1, where={"lang": "de"})[0][0].id
        'b'
        >>> store.close()
    """

    def __init__(
        self,
        *,
        collection: str,
        dimensions: int,
        metric: Metric = "cosine",
        path: str | os.PathLike[str] | None = None,
        host: str | None = None,
        port: int | None = None,
        ssl: bool = False,
        headers: dict[str, str] | None = None,
        client: ClientAPI | None = None,
        batch_size: int | None = None,
    ) -> None:
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
            raise ConfigurationError(f"dimensions must be a positive integer, got {dimensions!r}")
        if not isinstance(collection, str) or not _NAME.fullmatch(collection):
            raise ConfigurationError(
                "Chroma collection names have 3-512 characters of [a-zA-Z0-9._-] and start "
                f"and end with a letter or digit; got {collection!r}"
            )
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ConfigurationError(f"batch_size must be a positive integer, got {batch_size!r}")
        given = [
            n for n, v in (("client", client), ("path", path), ("host", host)) if v is not None
        ]
        if len(given) > 1:
            raise ConfigurationError(f"pass only one of client=, path=, host=; got {given}")
        if host is None and (port is not None or ssl or headers):
            raise ConfigurationError("port=, ssl= and headers= apply only with host=")
        self.collection = collection
        self.dimensions = dimensions
        self.metric = self._check_metric(metric)
        self._owns_client = client is None
        with _errors():
            self._client = (
                client if client is not None else self._connect(path, host, port, ssl, headers)
            )
            limit = self._client.get_max_batch_size()
        self.batch_size = min(batch_size or limit, limit)
        self._collection = self._open_collection()

    @staticmethod
    def _connect(
        path: str | os.PathLike[str] | None,
        host: str | None,
        port: int | None,
        ssl: bool,
        headers: dict[str, str] | None,
    ) -> ClientAPI:
        settings = Settings(anonymized_telemetry=False)
        if host is not None:
            return chromadb.HttpClient(
                host=host, port=port or 8000, ssl=ssl, headers=headers, settings=settings
            )
        if path is not None:
            return chromadb.PersistentClient(path=os.fspath(path), settings=settings)
        return chromadb.EphemeralClient(settings=settings)

    def _open_collection(self) -> Collection:
        space = _SPACE[self.metric]
        with _errors():
            try:
                # embedding_function=None: ragmem always passes vectors itself
                found = self._client.get_collection(self.collection, embedding_function=None)
            except ChromaNotFoundError:
                found = None
            if found is None:
                try:
                    return self._client.create_collection(
                        self.collection,
                        configuration=cast("Any", {"hnsw": {"space": space}}),
                        metadata={_DIMENSIONS_KEY: self.dimensions, _LAYOUT_KEY: _LAYOUT},
                        embedding_function=None,
                    )
                except ValueError as exc:
                    raise ConfigurationError(f"Chroma rejected the collection: {exc}") from exc
            existing = _space_of(found)
            stored = (found.metadata or {}).get(_DIMENSIONS_KEY)
            if stored is None:
                sample = found.get(limit=1, include=["embeddings"])["embeddings"]
                stored = None if sample is None or len(sample) == 0 else len(sample[0])
        if existing != space or (stored is not None and stored != self.dimensions):
            raise ConfigurationError(
                f"Chroma collection {self.collection!r} has space={existing!r}, "
                f"dimensions={stored}; this store wants space={space!r} "
                f"(metric={self.metric!r}), dimensions={self.dimensions}"
            )
        self._check_layout(found)
        return found

    def _check_layout(self, collection: Collection) -> None:
        metadata = dict(collection.metadata or {})
        if _DIMENSIONS_KEY not in metadata or metadata.get(_LAYOUT_KEY) == _LAYOUT:
            return  # made outside ragmem (plain metadata), or in this layout
        with _errors():
            if collection.count() == 0:  # nothing to misread: adopt it
                metadata[_LAYOUT_KEY] = _LAYOUT
                collection.modify(metadata=metadata)
                return
        raise ConfigurationError(
            f"Chroma collection {self.collection!r} was written by ragmem in an earlier layout "
            f"({metadata.get(_LAYOUT_KEY, 1)}; this version reads layout {_LAYOUT}): "
            "index its data again into a new collection"
        )

    def __repr__(self) -> str:
        return (
            f"ChromaVectorStore(collection={self.collection!r}, dimensions={self.dimensions}, "
            f"metric={self.metric!r})"
        )

    def close(self) -> None:
        """Release the client this store built (a ``client=`` passed in stays open)."""
        close = getattr(self._client, "close", None)  # ClientAPI lacks it; Client has it
        if self._owns_client and close is not None:
            close()

    # -- helpers ------------------------------------------------------------------------------

    def _score(self, distance: float) -> float:
        # Chroma's distances: cosine 1 - cos, ip 1 - dot, l2 the squared distance
        return -distance if self.metric == "l2" else 1.0 - distance

    def _existing(self, ids: list[str]) -> list[str]:
        found: list[str] = []
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start : start + self.batch_size]
            found.extend(self._collection.get(ids=chunk, include=[])["ids"])
        return found

    def _matching(self, where: Filter | None) -> list[str] | None:
        """Ids matching ``where``; None stands for every item."""
        tree = simplify(where)
        if tree is True:
            return None
        if tree is False:
            return []
        where_: Any = to_chroma(tree)
        return self._collection.get(where=where_, include=[])["ids"]

    # -- VectorStore --------------------------------------------------------------------------

    def _upsert(
        self, ids: list[str], vectors: Vectors, texts: list[str | None], metadata: list[Metadata]
    ) -> None:
        encoded: list[Any] = [encode_metadata(m, t is None) for m, t in zip(metadata, texts)]
        with _errors():
            for start in range(0, len(ids), self.batch_size):
                stop = start + self.batch_size
                chunk = encoded[start:stop]
                # Chroma's upsert merges metadata into an existing item, and keeps its
                # document when given None: set stale keys to None so the item is replaced
                # whole, and store a missing text as "" with a marker field.
                old = self._collection.get(ids=ids[start:stop], include=["metadatas"])
                position = {id_: i for i, id_ in enumerate(ids[start:stop])}
                for id_, old_meta in zip(old["ids"], old["metadatas"] or []):
                    new_meta = chunk[position[id_]]
                    for key in old_meta or {}:
                        new_meta.setdefault(key, None)
                self._collection.upsert(
                    ids=ids[start:stop],
                    embeddings=vectors[start:stop],
                    documents=["" if t is None else t for t in texts[start:stop]],
                    metadatas=chunk,
                )

    def _delete(self, ids: list[str] | None, where: Filter | None) -> int:
        with _errors():
            if ids is not None:
                doomed = self._existing(list(dict.fromkeys(ids)))
            else:
                matching = self._matching(where)
                doomed = self._collection.get(include=[])["ids"] if matching is None else matching
            for start in range(0, len(doomed), self.batch_size):
                self._collection.delete(ids=doomed[start : start + self.batch_size])
        return len(doomed)

    def _get(self, ids: list[str]) -> list[Record]:
        unique = list(dict.fromkeys(ids))
        found: dict[str, Record] = {}
        with _errors():
            for start in range(0, len(unique), self.batch_size):
                got: Any = self._collection.get(
                    ids=unique[start : start + self.batch_size],
                    include=["embeddings", "documents", "metadatas"],
                )
                vectors = got["embeddings"]
                documents = got["documents"] or [None] * len(got["ids"])
                metadatas = got["metadatas"] or [None] * len(got["ids"])
                for i, id_ in enumerate(got["ids"]):
                    found[id_] = Record(
                        id=id_,
                        vector=np.asarray(vectors[i], np.float32),
                        text=decode_text(documents[i], metadatas[i]),
                        metadata=decode_metadata(metadatas[i]),
                    )
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError(missing)
        return [found[i] for i in ids]

    def _search(self, queries: Vectors, k: int, where: Filter | None) -> list[list[Hit]]:
        tree = simplify(where)
        if tree is False:
            return [[] for _ in range(len(queries))]
        with _errors():
            where_: Any = None if tree is True else to_chroma(tree)
            result: Any = self._collection.query(
                query_embeddings=queries,
                n_results=k,
                where=where_,
                include=["documents", "metadatas", "distances"],
            )
        hits: list[list[Hit]] = []
        for row, ids in enumerate(result["ids"]):
            distances = result["distances"][row]
            documents = (result["documents"] or [[None] * len(ids)] * len(queries))[row]
            metadatas = (result["metadatas"] or [[None] * len(ids)] * len(queries))[row]
            hits.append(
                [
                    Hit(
                        id=id_,
                        score=self._score(distances[i]),
                        text=decode_text(documents[i], metadatas[i]),
                        metadata=decode_metadata(metadatas[i]),
                    )
                    for i, id_ in enumerate(ids)
                ]
            )
        return hits

    def _count(self, where: Filter | None) -> int:
        with _errors():
            matching = self._matching(where)
            return self._collection.count() if matching is None else len(matching)


def _space_of(collection: Collection) -> Any:
    with warnings.catch_warnings():
        # chromadb calls a collection made without an embedding function "legacy" on reload
        warnings.simplefilter("ignore", DeprecationWarning)
        config = collection.configuration or {}
    hnsw = config.get("hnsw") or {}
    space = hnsw.get("space") if isinstance(hnsw, dict) else None
    if space is None:
        space = (collection.metadata or {}).get("hnsw:space", "l2")
    return space
