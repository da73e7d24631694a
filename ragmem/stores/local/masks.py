"""Candidate masks of recently used filters, kept until the store's next write.

Applications tend to search many times with one filter (a tenant, a language, a
date range). Evaluating it is a pass over a metadata column per query, and on an
HNSW graph that pass costs as much as the search itself, so the store keeps the
masks of its last few filters until a write changes rows or metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import numpy.typing as npt

from ragmem.filters import And, Condition, Filter, Not

__all__ = ["MaskCache", "filter_key"]

Mask = npt.NDArray[np.bool_]


def filter_key(where: Filter) -> Hashable:
    """A hashable key equal only for filters that select the same rows.

    Filter models compare values with ``==``, where ``True == 1``; the filter
    language keeps bool apart from numbers, so the key records each value's type.
    """
    if isinstance(where, Condition):
        return (where.field, where.op, _typed(where.value))
    if isinstance(where, Not):
        return ("$not", filter_key(where.filter))
    return (
        "$and" if isinstance(where, And) else "$or",
        tuple(filter_key(f) for f in where.filters),
    )


def _typed(value: Any) -> Hashable:
    if isinstance(value, (tuple, list)):
        return tuple(_typed(v) for v in value)
    return (type(value), value)


class MaskCache:
    """Maps filters to their (read-only) candidate masks; ``clear`` on every write.

    Readers may use it concurrently: each operation is one dict operation, and the
    store clears it only while holding its write lock.

    Args:
        size: masks kept (the cache is emptied when a new filter would exceed it).
    """

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._masks: dict[Hashable, Mask] = {}

    def get(self, where: Filter, compute: Callable[[], Mask]) -> Mask:
        """The mask of ``where``, from the cache or from ``compute()``."""
        key = filter_key(where)
        mask = self._masks.get(key)
        if mask is None:
            mask = compute()
            mask.flags.writeable = False  # shared between searches
            if len(self._masks) >= self.size:
                self._masks.clear()
            self._masks[key] = mask
        return mask

    def clear(self) -> None:
        """Forget every mask (rows or metadata changed)."""
        self._masks.clear()
