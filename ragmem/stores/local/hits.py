"""Turning ranked rows into ``Hit`` objects that share nothing with the store.

Metadata is always copied: a caller that edits ``hit.metadata`` must never change the
store. Hits are validated like any ``Hit(...)``, all of a query's in one call, and
validation builds new dicts and lists, which is the copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, TypeAdapter

from ragmem.types import Hit, Metadata

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["EMPTY", "copy_metadata", "make_hits", "stored_metadata"]

# Shared by every row without metadata; never handed out (readers get copies).
EMPTY: Metadata = {}

_HITS = TypeAdapter(list[Hit], config=ConfigDict(defer_build=True))


class _WithLists(dict):  # type: ignore[type-arg]
    """Stored metadata holding list values, which a copy must copy too."""


def stored_metadata(metadata: Metadata | None) -> Metadata:
    """The form the store keeps validated metadata in (see ``copy_metadata``)."""
    if not metadata:
        return EMPTY
    if any(type(v) is list for v in metadata.values()):
        return _WithLists(metadata)
    return metadata


def copy_metadata(metadata: Metadata) -> Metadata:
    """A copy of stored metadata that shares nothing mutable with the store."""
    if type(metadata) is dict:  # scalars only: a shallow copy is a full copy
        return metadata.copy()
    return {k: v.copy() if type(v) is list else v for k, v in metadata.items()}


def make_hits(
    rows: Sequence[int],
    scores: Sequence[float],
    ids: Sequence[str | None],
    texts: Sequence[str | None],
    metadata: Sequence[Metadata],
) -> list[Hit]:
    """Hits for ``rows`` (with their ``scores``) from the store's per-row lists.

    Raises:
        AssertionError: a row is a tombstone (an index returned a deleted row).
    """
    values: list[dict[str, Any]] = []
    for row, score in zip(rows, scores):
        id_ = ids[row]
        assert id_ is not None, f"row {row} was deleted"
        values.append({"id": id_, "score": score, "text": texts[row], "metadata": metadata[row]})
    return _HITS.validate_python(values)
