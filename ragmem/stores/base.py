"""The VectorStore interface: validation written once, backends implement protected methods."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ragmem._util import to_thread
from ragmem.errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    InvalidVectorError,
)
from ragmem.filters import Filter, FilterLike, parse_filter
from ragmem.types import Hit, Metadata, Metric, Record, Vectors, validate_metadata

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["METRICS", "VectorStore", "check_ids", "check_vectors"]

METRICS: tuple[str, ...] = ("cosine", "dot", "l2")


def check_ids(ids: Sequence[str], *, unique: bool = True) -> list[str]:
    """Validate ids: non-empty strings, and (for writes) no duplicates in one call."""
    if isinstance(ids, str) or not isinstance(ids, Iterable):
        raise InvalidInputError(f"ids must be a sequence of strings, got {type(ids).__name__}")
    out = list(ids)
    for i, id_ in enumerate(out):
        if not isinstance(id_, str) or not id_:
            raise InvalidInputError(f"ids[{i}] must be a non-empty string, got {id_!r}")
    if unique and len(set(out)) != len(out):
        seen: set[str] = set()
        dupes = sorted({i for i in out if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
        raise InvalidInputError(f"duplicate ids in one call: {dupes[:10]}")
    return out


def check_vectors(vectors: object, dimensions: int, *, rows: int | None = None) -> Vectors:
    """Validate a (n, d) array of finite numbers and return it as C-contiguous float32.

    A 1-D array is taken as one vector.
    """
    if isinstance(vectors, (list, tuple)) and not vectors:
        array = np.empty((0, dimensions), np.float32)
    else:
        try:
            array = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidVectorError(f"vectors are not a numeric array: {exc}") from exc
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise InvalidVectorError(f"vectors must have shape (n, d), got {array.shape}")
    if array.shape[1] != dimensions and array.shape[0] > 0:
        raise DimensionMismatchError(dimensions, array.shape[1])
    if rows is not None and array.shape[0] != rows:
        raise InvalidVectorError(f"got {array.shape[0]} vectors for {rows} ids")
    # one query (the hot case): a finite sum of squares proves every value finite,
    # in one BLAS call; an infinite one may still be an overflow, so look closer
    if len(array) == 1:
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: checked below
            if math.isfinite(np.dot(array[0], array[0])):
                return np.ascontiguousarray(array)
    if not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise InvalidVectorError(f"vector {bad} has NaN or infinite values")
    return np.ascontiguousarray(array)


class VectorStore(ABC):
    """Stores vectors with ids, texts and metadata; searches by similarity with filters.

    Higher ``Hit.score`` is better on every store: ``cosine`` and ``dot`` score by
    similarity, ``l2`` by the negated squared Euclidean distance. With ``cosine``,
    stored vectors may come back from ``get`` normalised to unit length.
    Ids are strings; ``upsert`` replaces existing ids whole.

    Example:
        >>> import numpy as np
        >>> from ragmem import LocalVectorStore
        >>> store = LocalVectorStore(dimensions=2)
        >>> store.upsert(["a", "b"], np.array([[1, 0], [0, 1]], np.float32),
        ...              metadata=[{"n": 1}, {"n": 2}])
        >>> [h.id for h in store.search(np.array([1, 0.1], np.float32), k=1)[0]]
        ['a']
    """

    dimensions: int
    metric: Metric = "cosine"

    # -- public API, written once -------------------------------------------------------------

    def upsert(
        self,
        ids: Sequence[str],
        vectors: npt.ArrayLike,
        texts: Sequence[str | None] | None = None,
        metadata: Sequence[Metadata] | None = None,
    ) -> None:
        """Insert or replace items; each id's vector, text and metadata are replaced whole."""
        args = self._check_upsert(ids, vectors, texts, metadata)
        if args[0]:
            self._upsert(*args)

    def delete(self, ids: Sequence[str] | None = None, *, where: FilterLike | None = None) -> int:
        """Delete by ids or by filter (exactly one); returns how many existed.

        Unknown ids are ignored, so a retried delete is harmless.
        """
        id_list, tree = self._check_delete(ids, where)
        return self._delete(id_list, tree)

    def get(self, ids: Sequence[str]) -> list[Record]:
        """Fetch items by id, in the order asked.

        Raises:
            NotFoundError: some ids are not in the store (all missing ones are named).
        """
        return self._get(check_ids(ids, unique=False))

    def search(
        self, vectors: npt.ArrayLike, k: int = 10, *, where: FilterLike | None = None
    ) -> list[list[Hit]]:
        """Top-``k`` items for each query vector (a 1-D vector is one query), best first.

        The filter applies before top-k: every returned hit matches it, and fewer than
        ``k`` hits come back only when fewer than ``k`` items match.
        """
        queries = check_vectors(vectors, self.dimensions)
        self._check_k(k)
        return self._search(queries, k, parse_filter(where))

    def count(self, where: FilterLike | None = None) -> int:
        """Number of items, or of items matching ``where``."""
        return self._count(parse_filter(where))

    async def upsert_async(
        self,
        ids: Sequence[str],
        vectors: npt.ArrayLike,
        texts: Sequence[str | None] | None = None,
        metadata: Sequence[Metadata] | None = None,
    ) -> None:
        """Async twin of ``upsert``."""
        args = self._check_upsert(ids, vectors, texts, metadata)
        if args[0]:
            await self._upsert_async(*args)

    async def delete_async(
        self, ids: Sequence[str] | None = None, *, where: FilterLike | None = None
    ) -> int:
        """Async twin of ``delete``."""
        id_list, tree = self._check_delete(ids, where)
        return await self._delete_async(id_list, tree)

    async def get_async(self, ids: Sequence[str]) -> list[Record]:
        """Async twin of ``get``."""
        return await self._get_async(check_ids(ids, unique=False))

    async def search_async(
        self, vectors: npt.ArrayLike, k: int = 10, *, where: FilterLike | None = None
    ) -> list[list[Hit]]:
        """Async twin of ``search``."""
        queries = check_vectors(vectors, self.dimensions)
        self._check_k(k)
        return await self._search_async(queries, k, parse_filter(where))

    async def count_async(self, where: FilterLike | None = None) -> int:
        """Async twin of ``count``."""
        return await self._count_async(parse_filter(where))

    def close(self) -> None:  # noqa: B027 (a no-op is the right default)
        """Release files, locks and connections. The store is unusable afterwards."""

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- backends implement these -------------------------------------------------------------

    @abstractmethod
    def _upsert(
        self, ids: list[str], vectors: Vectors, texts: list[str | None], metadata: list[Metadata]
    ) -> None: ...

    @abstractmethod
    def _delete(self, ids: list[str] | None, where: Filter | None) -> int: ...

    @abstractmethod
    def _get(self, ids: list[str]) -> list[Record]: ...

    @abstractmethod
    def _search(self, queries: Vectors, k: int, where: Filter | None) -> list[list[Hit]]: ...

    @abstractmethod
    def _count(self, where: Filter | None) -> int: ...

    # Network backends override these with their async clients.
    async def _upsert_async(
        self, ids: list[str], vectors: Vectors, texts: list[str | None], metadata: list[Metadata]
    ) -> None:
        await to_thread(self._upsert, ids, vectors, texts, metadata)

    async def _delete_async(self, ids: list[str] | None, where: Filter | None) -> int:
        return await to_thread(self._delete, ids, where)

    async def _get_async(self, ids: list[str]) -> list[Record]:
        return await to_thread(self._get, ids)

    async def _search_async(
        self, queries: Vectors, k: int, where: Filter | None
    ) -> list[list[Hit]]:
        return await to_thread(self._search, queries, k, where)

    async def _count_async(self, where: Filter | None) -> int:
        return await to_thread(self._count, where)

    # -- shared validation --------------------------------------------------------------------

    def _check_upsert(
        self,
        ids: Sequence[str],
        vectors: npt.ArrayLike,
        texts: Sequence[str | None] | None,
        metadata: Sequence[Metadata] | None,
    ) -> tuple[list[str], Vectors, list[str | None], list[Metadata]]:
        id_list = check_ids(ids)
        array = check_vectors(vectors, self.dimensions, rows=len(id_list))
        text_list: list[str | None] = [None] * len(id_list) if texts is None else list(texts)
        if isinstance(texts, str) or len(text_list) != len(id_list):
            raise InvalidInputError(f"got {len(text_list)} texts for {len(id_list)} ids")
        for i, text in enumerate(text_list):
            if text is not None and not isinstance(text, str):
                raise InvalidInputError(f"texts[{i}] is {type(text).__name__}, expected str")
        meta_list = [{}] * len(id_list) if metadata is None else list(metadata)
        if len(meta_list) != len(id_list):
            raise InvalidInputError(f"got {len(meta_list)} metadata dicts for {len(id_list)} ids")
        return id_list, array, text_list, [validate_metadata(m) for m in meta_list]

    def _check_delete(
        self, ids: Sequence[str] | None, where: FilterLike | None
    ) -> tuple[list[str] | None, Filter | None]:
        if (ids is None) == (where is None):
            raise InvalidInputError("delete takes exactly one of ids= or where=")
        return (None if ids is None else check_ids(ids, unique=False)), parse_filter(where)

    @staticmethod
    def _check_k(k: int) -> None:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")

    @staticmethod
    def _check_metric(metric: str) -> Any:
        if metric not in METRICS:
            raise ConfigurationError(f"metric must be one of {METRICS}, got {metric!r}")
        return metric
