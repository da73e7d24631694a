"""The records of a LocalVectorStore's rows: id, text and metadata per table row.

Row numbers are the VectorTable's: a replaced id keeps its row, a deleted row stays
as a tombstone (id ``None``) until the store compacts. Metadata is also kept as
columns, on which filters are evaluated.

Metadata always leaves as a copy: a caller that edits ``hit.metadata`` must never
change the store. Hits are validated like any ``Hit(...)``, all of a query's in one
call, and validation builds new dicts and lists, which is the copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, TypeAdapter

from ragmem.errors import NotFoundError
from ragmem.filters.columns import MetadataColumns
from ragmem.types import Hit, Metadata, Record

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    import numpy.typing as npt

    from ragmem.filters import Filter
    from ragmem.types import Vectors

__all__ = ["EMPTY", "Records", "copy_metadata", "stored_metadata"]

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


class Records:
    """Per-row ids, texts and metadata, the row of each live id, and metadata columns.

    Args:
        ids: one per row, ``None`` for a tombstone.
        texts: one per row.
        metadata: one per row, in stored form (see ``stored_metadata``).

    Raises:
        ValueError: an id stands in two rows.
    """

    def __init__(
        self,
        ids: list[str | None] | None = None,
        texts: list[str | None] | None = None,
        metadata: list[Metadata] | None = None,
    ) -> None:
        self.ids: list[str | None] = ids or []
        self.texts: list[str | None] = texts or []
        self.metadata: list[Metadata] = metadata or []
        self.row_of = {id_: row for row, id_ in enumerate(self.ids) if id_ is not None}
        if len(self.row_of) + self.ids.count(None) != len(self.ids):
            raise ValueError("duplicate ids")
        self.columns = MetadataColumns.of_rows(self.metadata)

    def __len__(self) -> int:
        return len(self.row_of)

    def dead(self) -> list[int]:
        """The rows that are tombstones."""
        return [row for row, id_ in enumerate(self.ids) if id_ is None]

    def write(
        self, ids: list[str], texts: list[str | None], metadata: list[Metadata]
    ) -> tuple[list[int], list[int], Sequence[int]]:
        """Set the records of ``ids``: a known id in its row, a new one in a new last row.

        Returns:
            The positions in ``ids`` of known ids, their rows, and the positions of new ids.
        """
        row_of = self.row_of
        old = [i for i, id_ in enumerate(ids) if id_ in row_of]
        rows = [row_of[ids[i]] for i in old]
        for i, row in zip(old, rows):
            self.texts[row] = texts[i]
            self.metadata[row] = stored_metadata(metadata[i])
            self.columns.set(row, metadata[i])
        new = [i for i, id_ in enumerate(ids) if id_ not in row_of] if old else range(len(ids))
        row = len(self.ids)
        for i in new:
            row_of[ids[i]] = row
            self.ids.append(ids[i])
            self.texts.append(texts[i])
            self.metadata.append(stored_metadata(metadata[i]))
            if metadata[i]:
                self.columns.set(row, metadata[i])
            row += 1
        return old, rows, new

    def delete(self, ids: list[str]) -> list[int]:
        """Make the rows of ``ids`` tombstones (unknown ids are skipped); their rows, sorted."""
        rows = sorted({self.row_of.pop(id_) for id_ in ids if id_ in self.row_of})
        for row in rows:
            self.ids[row] = None
            self.texts[row] = None
            self.metadata[row] = EMPTY
            self.columns.clear(row)
        return rows

    def keep(self, kept: list[int]) -> Records:
        """The records of rows ``kept`` only, renumbered from 0 in that order."""
        kept_ids = [self.ids[row] for row in kept]
        kept_texts = [self.texts[row] for row in kept]
        return Records(kept_ids, kept_texts, [self.metadata[row] for row in kept])

    def matching(self, where: Filter, n: int) -> npt.NDArray[np.bool_]:
        """Rows ``0..n-1`` whose metadata satisfies ``where`` (tombstones never do)."""
        return self.columns.evaluate(where, n)

    def rows(self, ids: list[str]) -> list[int]:
        """The rows of ``ids``.

        Raises:
            NotFoundError: naming the ids not stored.
        """
        missing = [i for i in ids if i not in self.row_of]
        if missing:
            raise NotFoundError(missing)
        return [self.row_of[i] for i in ids]

    def records(self, ids: list[str], rows: list[int], vectors: Vectors) -> list[Record]:
        """``Record`` copies of ``rows`` (the rows of ``ids``) with their ``vectors``."""
        return [
            Record(
                id=id_,
                vector=vector,
                text=self.texts[row],
                metadata=copy_metadata(self.metadata[row]),
            )
            for id_, row, vector in zip(ids, rows, vectors)
        ]

    def hits(self, rows: Sequence[int], scores: Sequence[float]) -> list[Hit]:
        """Hits for ``rows`` with their ``scores``.

        Raises:
            AssertionError: a row is a tombstone (an index returned a deleted row).
        """
        ids, texts, metadata = self.ids, self.texts, self.metadata
        values: list[dict[str, Any]] = []
        for row, score in zip(rows, scores):
            id_ = ids[row]
            assert id_ is not None, f"row {row} was deleted"
            values.append(
                {"id": id_, "score": score, "text": texts[row], "metadata": metadata[row]}
            )
        return _HITS.validate_python(values)
