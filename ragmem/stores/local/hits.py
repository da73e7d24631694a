"""Turning ranked rows into ``Hit`` objects cheaply, without handing out the store's metadata.

A search returns ``k`` hits per query, and on an HNSW graph the whole search costs
well under a millisecond, so building the hits is a visible share of it. The store's
rows were validated when they were written, so hits are assembled from trusted values
without running pydantic's validator again (``ragmem._trusted``). Metadata is always
copied: a caller that edits ``hit.metadata`` must never change the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ragmem._trusted import assemble, copy_with_lists, has_fields
from ragmem.types import Hit, Metadata

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["EMPTY", "copy_metadata", "make_hits", "stored_metadata"]

# Shared by every row without metadata; never handed out (readers get copies).
EMPTY: Metadata = {}


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
    return copy_with_lists(metadata)


_TRUSTED = has_fields(Hit, ["id", "score", "text", "metadata", "explain"])


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
    out: list[Hit] = []
    for row, score in zip(rows, scores):
        id_ = ids[row]
        assert id_ is not None, f"row {row} was deleted"
        meta = metadata[row]
        if not _TRUSTED:  # pragma: no cover - only with a pydantic whose internals changed
            out.append(Hit(id=id_, score=score, text=texts[row], metadata=copy_metadata(meta)))
            continue
        values = {
            "id": id_,
            "score": score,
            "text": texts[row],
            "metadata": meta.copy() if type(meta) is dict else copy_metadata(meta),
            "explain": {},
        }
        out.append(assemble(Hit, values, {"id", "score", "text", "metadata"}))
    return out
