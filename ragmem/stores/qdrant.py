"""QdrantVectorStore: the VectorStore interface on a Qdrant collection (local or server)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from ragmem._util import to_thread
from ragmem.errors import (
    BackendHTTPError,
    BackendResponseError,
    BackendUnavailableError,
    ConfigurationError,
    MissingDependencyError,
    NotFoundError,
    StoreLockedError,
)
from ragmem.stores._translate import simplify
from ragmem.stores.base import VectorStore
from ragmem.types import Hit, Record

try:
    import httpx
    from qdrant_client import AsyncQdrantClient, QdrantClient, models
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(package="qdrant-client", extra="qdrant") from exc

from ragmem.stores._translate_qdrant import (
    ID_FIELD,
    KEYS_FIELD,
    METADATA_FIELD,
    TEXT_FIELD,
    to_qdrant,
    unseen_keys,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from ragmem.filters import Filter
    from ragmem.types import Metadata, Metric, Vectors

__all__ = ["QdrantVectorStore", "point_id"]

# Fixed namespace: the same ragmem id maps to the same point id in every process.
_NAMESPACE = uuid.UUID("6f1c1e0a-3c55-5d38-9b0e-2d0d6a7e5a11")
_DISTANCE = {
    "cosine": models.Distance.COSINE,
    "dot": models.Distance.DOT,
    "l2": models.Distance.EUCLID,
}
_BACKEND = "qdrant"


class _Call:
    """One client call an operation needs: the same for QdrantClient and AsyncQdrantClient."""

    __slots__ = ("args", "kwargs", "method")

    def __init__(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.method = method
        self.args = args
        self.kwargs = kwargs

    def on(self, client: Any) -> Any:
        """Make the call on ``client`` (a coroutine for the async client)."""
        return getattr(client, self.method)(*self.args, **self.kwargs)


T = TypeVar("T")
# An operation: yields the calls it needs, receives each reply, returns its result.
Steps = Generator[_Call, Any, T]


def point_id(id_: str) -> str:
    """The Qdrant point id (a UUIDv5 string) that stores the item with ragmem id ``id_``."""
    return str(uuid.uuid5(_NAMESPACE, id_))


@contextmanager
def _errors() -> Iterator[None]:
    """Translate qdrant-client and transport exceptions into ragmem's tree."""
    try:
        yield
    except UnexpectedResponse as exc:
        body = exc.content.decode("utf-8", "replace") if exc.content else str(exc)
        raise BackendHTTPError(exc.status_code or 0, body, backend=_BACKEND) from exc
    except (ResponseHandlingException, httpx.TransportError, ConnectionError) as exc:
        raise BackendUnavailableError(str(exc), backend=_BACKEND) from exc


class QdrantVectorStore(VectorStore):
    """A VectorStore on a Qdrant collection: in memory, on disk, or on a server or cluster.

    Ids are mapped to UUIDv5 point ids (see ``point_id``); the payload holds the
    original id, the text and the metadata (under ``"metadata"``, so user keys never clash
    with the adapter's fields); see ``ragmem.stores._translate_qdrant`` for the rest.
    Scores follow the built-in store: cosine similarity, dot product, or the negated
    squared Euclidean distance.

    Args:
        collection: collection name; created when missing, validated when present.
        dimensions: width of every vector.
        metric: ``"cosine"`` (default), ``"dot"`` or ``"l2"``.
        location: ``":memory:"`` for a throwaway in-process store.
        path: directory of an on-disk local store.
        url: URL of a Qdrant server or cluster, e.g. ``"http://localhost:6333"``.
        api_key: key for ``url``; ``None`` reads ``QDRANT_API_KEY``.
        client: a ready ``QdrantClient`` (used as given, and not closed by ``close``).
        async_client: a ready ``AsyncQdrantClient`` for the ``*_async`` methods. With
            ``url`` one is built; otherwise the async methods run the sync client in
            a worker thread (local mode cannot be shared between two clients).
        prefer_grpc: talk gRPC to the server (with ``url``).
        timeout: request timeout in seconds (with ``url``).
        batch_size: points per upsert request.
        exact: search without the HNSW index (exact, slower on big collections).
            Local mode (``location``/``path``) is always exact.

    Example:
        >>> import numpy as np
        >>> store = QdrantVectorStore(collection="docs", dimensions=2, location=":memory:")
        >>> store.upsert(["a", "b"], np.array([[1, 0], [0, 1]], np.float32),
        ...              metadata=[{"lang": "en"}, {"lang": "de"}])
        >>> store.search(np.array([1, 0.2], np.float32), k=1, where={"lang": "de"})[0][0].id
        'b'
    """

    def __init__(
        self,
        *,
        collection: str,
        dimensions: int,
        metric: Metric = "cosine",
        location: str | None = None,
        path: str | os.PathLike[str] | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: QdrantClient | None = None,
        async_client: AsyncQdrantClient | None = None,
        prefer_grpc: bool = False,
        timeout: int | None = None,
        batch_size: int = 256,
        exact: bool = False,
    ) -> None:
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
            raise ConfigurationError(f"dimensions must be a positive integer, got {dimensions!r}")
        if not isinstance(collection, str) or not collection:
            raise ConfigurationError(f"collection must be a non-empty string, got {collection!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"batch_size must be a positive integer, got {batch_size!r}")
        given = [n for n, v in (("client", client), ("location", location), ("path", path),
                                ("url", url)) if v is not None]  # fmt: skip
        if len(given) > 1:
            raise ConfigurationError(
                f"pass only one of client=, location=, path=, url=; got {given}"
            )
        if url is None and (prefer_grpc or timeout is not None or api_key is not None):
            raise ConfigurationError("api_key=, prefer_grpc= and timeout= apply only with url=")
        if isinstance(client, AsyncQdrantClient):
            raise ConfigurationError(
                "client= takes a QdrantClient; pass AsyncQdrantClient as async_client="
            )
        self.collection = collection
        self.dimensions = dimensions
        self.metric = self._check_metric(metric)
        self.batch_size = batch_size
        self._search_params = models.SearchParams(exact=True) if exact else None
        self._owns_client = client is None
        if url is not None and api_key is None:
            api_key = os.environ.get("QDRANT_API_KEY")
        self._client = client if client is not None else self._connect(
            location=location, path=path, url=url, api_key=api_key,
            prefer_grpc=prefer_grpc, timeout=timeout,
        )  # fmt: skip
        self._owns_async_client = async_client is None and url is not None
        if async_client is None and url is not None:
            # the sync client already checked the server version; one check is enough
            async_client = AsyncQdrantClient(
                url=url, api_key=api_key, prefer_grpc=prefer_grpc, timeout=timeout,
                check_compatibility=False,
            )  # fmt: skip
        self._async_client = async_client
        self._ensure_collection()

    @staticmethod
    def _connect(**options: Any) -> QdrantClient:
        path = options.pop("path")
        if options["url"] is None:
            # no server: pass only the local-mode options, in memory by default
            location = options["location"] or (None if path else ":memory:")
            options = {"location": location, "path": None if path is None else os.fspath(path)}
        try:
            with _errors():
                return QdrantClient(**options)
        except RuntimeError as exc:
            if "already accessed" in str(exc):
                raise StoreLockedError(path) from exc
            raise

    def _ensure_collection(self) -> None:
        wanted = _DISTANCE[self.metric]
        with _errors():
            if not self._client.collection_exists(self.collection):
                self._client.create_collection(
                    self.collection,
                    vectors_config=models.VectorParams(size=self.dimensions, distance=wanted),
                )
                return
            params = self._client.get_collection(self.collection).config.params.vectors
        if not isinstance(params, models.VectorParams):
            raise ConfigurationError(
                f"Qdrant collection {self.collection!r} uses named vectors; "
                "QdrantVectorStore needs a collection with one unnamed vector"
            )
        if params.size != self.dimensions or params.distance != wanted:
            raise ConfigurationError(
                f"Qdrant collection {self.collection!r} has size={params.size}, "
                f"distance={params.distance.value}; this store wants size={self.dimensions}, "
                f"distance={wanted.value} (metric={self.metric!r})"
            )

    def __repr__(self) -> str:
        return (
            f"QdrantVectorStore(collection={self.collection!r}, dimensions={self.dimensions}, "
            f"metric={self.metric!r})"
        )

    def close(self) -> None:
        """Close the clients this store built (a ``client=`` passed in stays open)."""
        if self._owns_client:
            self._client.close()

    # -- request building and response parsing, shared by sync and async --------------------

    def _batches(
        self, ids: list[str], vectors: Vectors, texts: list[str | None], metadata: list[Metadata]
    ) -> Iterator[models.Batch]:
        for start in range(0, len(ids), self.batch_size):
            stop = start + self.batch_size
            payloads: list[dict[str, Any]] = []
            for id_, text, meta in zip(ids[start:stop], texts[start:stop], metadata[start:stop]):
                payload: dict[str, Any] = {ID_FIELD: id_, METADATA_FIELD: meta}
                if text is not None:
                    payload[TEXT_FIELD] = text
                unseen = unseen_keys(meta)
                if unseen:
                    payload[KEYS_FIELD] = unseen
                payloads.append(payload)
            yield models.Batch(
                ids=[point_id(i) for i in ids[start:stop]],
                vectors=vectors[start:stop].tolist(),
                payloads=payloads,
            )

    def _requests(
        self, queries: Vectors, k: int, flt: models.Filter | None
    ) -> list[models.QueryRequest]:
        return [
            models.QueryRequest(
                query=q, filter=flt, limit=k, with_payload=True, params=self._search_params
            )
            for q in queries.tolist()
        ]

    def _single(self, query: Vectors, k: int, flt: models.Filter | None) -> dict[str, Any]:
        """``query_points`` keyword arguments for one query (no request model to build)."""
        return {
            "query": query.tolist(),
            "query_filter": flt,
            "limit": k,
            "with_payload": True,
            "search_params": self._search_params,
        }

    def _hit(self, point: models.ScoredPoint) -> Hit:
        payload = point.payload or {}
        # Qdrant reports the Euclidean distance itself; ragmem's l2 score is -distance**2
        score = -(point.score**2) if self.metric == "l2" else point.score
        return Hit(id=payload[ID_FIELD], score=score, text=payload.get(TEXT_FIELD),
                   metadata=payload.get(METADATA_FIELD, {}))  # fmt: skip

    def _records(self, ids: list[str], points: Sequence[models.Record]) -> list[Record]:
        found: dict[str, Record] = {}
        for point in points:
            payload = point.payload or {}
            vector = point.vector
            if not isinstance(vector, list):
                raise BackendResponseError("point came back without its vector", backend=_BACKEND)
            found[payload[ID_FIELD]] = Record(
                id=payload[ID_FIELD],
                vector=np.asarray(vector, np.float32),
                text=payload.get(TEXT_FIELD),
                metadata=payload.get(METADATA_FIELD, {}),
            )
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError(missing)
        return [found[i] for i in ids]

    @staticmethod
    def _filter(where: Filter | None) -> models.Filter | Literal[False] | None:
        """The Qdrant filter; ``None`` matches everything, ``False`` nothing (skip the call)."""
        tree = simplify(where)
        if isinstance(tree, bool):
            return None if tree else False
        return to_qdrant(tree)

    # -- operations: each a generator of client calls, run by the sync or the async client ----

    def _upsert_steps(
        self, ids: list[str], vectors: Vectors, texts: list[str | None], metadata: list[Metadata]
    ) -> Steps[None]:
        for batch in self._batches(ids, vectors, texts, metadata):
            yield _Call("upsert", self.collection, points=batch, wait=True)

    def _delete_steps(self, ids: list[str] | None, where: Filter | None) -> Steps[int]:
        if ids is not None:
            existing = yield _Call(
                "retrieve", self.collection, [point_id(i) for i in set(ids)], with_payload=False
            )
            if existing:
                points = models.PointIdsList(points=[p.id for p in existing])
                yield _Call("delete", self.collection, points_selector=points, wait=True)
            return len(existing)
        flt = self._filter(where)
        if flt is False:
            return 0
        n: int = (yield _Call("count", self.collection, count_filter=flt, exact=True)).count
        if n:
            selector = models.FilterSelector(filter=flt or models.Filter())
            yield _Call("delete", self.collection, points_selector=selector, wait=True)
        return n

    def _get_steps(self, ids: list[str]) -> Steps[list[Record]]:
        points = yield _Call(
            "retrieve", self.collection, [point_id(i) for i in set(ids)], with_payload=True,
            with_vectors=True,
        )  # fmt: skip
        return self._records(ids, points)

    def _search_steps(
        self, queries: Vectors, k: int, where: Filter | None
    ) -> Steps[list[list[Hit]]]:
        flt = self._filter(where)
        if flt is False:
            return [[] for _ in range(len(queries))]
        if len(queries) == 1:
            # one query: the plain endpoint, without the batch envelope
            single = self._single(queries[0], k, flt)
            responses = [(yield _Call("query_points", self.collection, **single))]
        else:
            requests = self._requests(queries, k, flt)
            responses = yield _Call("query_batch_points", self.collection, requests=requests)
        return [[self._hit(p) for p in r.points] for r in responses]

    def _count_steps(self, where: Filter | None) -> Steps[int]:
        flt = self._filter(where)
        if flt is False:
            return 0
        return (yield _Call("count", self.collection, count_filter=flt, exact=True)).count  # type: ignore[no-any-return]

    def _run(self, steps: Steps[T]) -> T:
        """Run ``steps`` on the sync client."""
        with _errors():
            try:
                call = next(steps)
                while True:
                    call = steps.send(call.on(self._client))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def _run_async(self, steps: Steps[T]) -> T:
        """Run ``steps`` on the async client, or on the sync one in a worker thread."""
        client = self._async_client
        if client is None:
            return await to_thread(self._run, steps)
        with _errors():
            try:
                call = next(steps)
                while True:
                    call = steps.send(await call.on(client))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def _upsert(
        self, ids: list[str], vectors: Vectors, texts: list[str | None], metadata: list[Metadata]
    ) -> None:
        self._run(self._upsert_steps(ids, vectors, texts, metadata))

    def _delete(self, ids: list[str] | None, where: Filter | None) -> int:
        return self._run(self._delete_steps(ids, where))

    def _get(self, ids: list[str]) -> list[Record]:
        return self._run(self._get_steps(ids))

    def _search(self, queries: Vectors, k: int, where: Filter | None) -> list[list[Hit]]:
        return self._run(self._search_steps(queries, k, where))

    def _count(self, where: Filter | None) -> int:
        return self._run(self._count_steps(where))

    async def _upsert_async(
        self, ids: list[str], vectors: Vectors, texts: list[str | None], metadata: list[Metadata]
    ) -> None:
        await self._run_async(self._upsert_steps(ids, vectors, texts, metadata))

    async def _delete_async(self, ids: list[str] | None, where: Filter | None) -> int:
        return await self._run_async(self._delete_steps(ids, where))

    async def _get_async(self, ids: list[str]) -> list[Record]:
        return await self._run_async(self._get_steps(ids))

    async def _search_async(
        self, queries: Vectors, k: int, where: Filter | None
    ) -> list[list[Hit]]:
        return await self._run_async(self._search_steps(queries, k, where))

    async def _count_async(self, where: Filter | None) -> int:
        return await self._run_async(self._count_steps(where))

    async def aclose(self) -> None:
        """Async twin of ``close``: also closes the async client this store built.

        Call it (or use ``async with``) before the event loop ends.
        """
        if self._async_client is not None and self._owns_async_client:
            await self._async_client.close()
        self.close()

    async def __aenter__(self) -> QdrantVectorStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
