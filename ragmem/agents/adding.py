"""How a new memory lands: a new row, a merge into a duplicate, or a superseding of the
memories with the same ``key``.

Exact repeats (same text up to case and spacing) always merge into the existing memory
of exactly the same scope. A near repeat merges when its cosine reaches
``near_duplicate`` *and* it states the same numbers: "moved to Nairobi in 2020" and
"... in 2024" embed almost alike but are two facts, and merging would hide one of them.
"""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import Sequence

import numpy as np

from ragmem.agents.index import MemoryIndex
from ragmem.agents.records import Ledger, MemoryChange, MemoryInput, MemoryItem
from ragmem.agents.scope import SCOPES, content_hash, scope_filter, scope_sql
from ragmem.stores.base import VectorStore
from ragmem.types import Hit

__all__ = ["Batch", "Deduplication"]

_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")


def _numbers(text: str) -> builtins.list[str]:
    """The numbers a text states (years, dates, amounts), in order."""
    return _NUMBER.findall(text)


def _unit(vector: np.ndarray) -> np.ndarray:
    v = np.asarray(vector, np.float64)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


class Batch:
    """The memories one ``add_many`` call added so far (not yet in the vector store), by
    exact scope, with their unit vectors in one matrix: a new memory is compared with all
    of them in one product."""

    def __init__(self) -> None:
        self._items: dict[tuple[str | None, ...], list[MemoryItem]] = {}
        self._units: dict[tuple[str | None, ...], np.ndarray] = {}

    def add(self, item: MemoryItem, vector: np.ndarray) -> None:
        key = tuple(getattr(item, name) for name in SCOPES)
        items = self._items.setdefault(key, [])
        units = self._units.get(key)
        if units is None or len(units) == len(items):  # grow by doubling
            grown = np.zeros((max(8, 2 * len(items)), len(vector)), np.float64)
            if units is not None:
                grown[: len(items)] = units
            self._units[key] = units = grown
        units[len(items)] = _unit(vector)
        items.append(item)

    def similar(
        self, scope: dict[str, str], vector: np.ndarray
    ) -> builtins.list[tuple[float, MemoryItem]]:
        """(cosine, memory) for every memory of exactly ``scope`` added so far."""
        key = tuple(scope.get(name) for name in SCOPES)
        items = self._items.get(key, [])
        if not items:
            return []
        cosines = self._units[key][: len(items)] @ _unit(vector)
        return list(zip(cosines.tolist(), items))


class Deduplication:
    """Adding one memory for ``Memory`` (which inherits it)."""

    deduplicate: bool
    near_duplicate: float
    store: VectorStore
    _ledger: Ledger
    _index: MemoryIndex

    def _add_one(
        self,
        entry: MemoryInput,
        vector: np.ndarray,
        scope: dict[str, str],
        now: float,
        batch: Batch,
        nearest: Hit | None = None,
    ) -> MemoryChange:
        """Write one memory (or merge it into a duplicate); ``nearest`` is the closest
        stored memory of exactly its scope (``nearest_stored``)."""
        digest = content_hash(entry.text)
        if self.deduplicate:
            duplicate = self._find_duplicate(entry.text, digest, scope, batch, vector, nearest)
            if duplicate is not None:
                return self._merge(duplicate, entry, now)
        item = MemoryItem(
            id=uuid.uuid4().hex,
            text=entry.text,
            hash=digest,
            key=entry.key,
            metadata=entry.metadata,
            importance=entry.importance,
            timestamp=now if entry.timestamp is None else float(entry.timestamp),
            created_at=now,
            updated_at=now,
            expires_at=None if entry.ttl_seconds is None else now + entry.ttl_seconds,
            **scope,
        )
        previous = self._same_key(entry.key, scope) if entry.key is not None else []
        with self._ledger.transaction() as db:
            self._ledger.insert(db, item)
            self._ledger.record(db, item.id, "ADD", text=item.text, metadata=item.metadata)
            for old in previous:
                self._ledger.update(
                    db,
                    old.id,
                    status="superseded",
                    superseded_by=item.id,
                    valid_to=max(old.timestamp, item.timestamp),  # when the new fact was said
                )
                self._ledger.record(
                    db, old.id, "SUPERSEDE", detail={"by": item.id, "key": item.key}
                )
        self._index.fresh[item.id] = vector
        if previous:
            return MemoryChange(event="SUPERSEDE", item=item, superseded=previous[0].id)
        return MemoryChange(event="ADD", item=item)

    def _find_duplicate(
        self,
        text: str,
        digest: str,
        scope: dict[str, str],
        batch: Batch,
        vector: np.ndarray,
        nearest: Hit | None,
    ) -> MemoryItem | None:
        """An active memory in exactly this scope that ``text`` repeats, if any.

        Exact repeats (same text up to case and spacing) always merge. A near repeat
        merges when its cosine reaches ``near_duplicate`` *and* it states the same
        numbers: "moved to Nairobi in 2020" and "... in 2024" embed almost alike but
        are two facts, and merging would hide one of them from search.
        """
        clause, params = scope_sql(scope, exact=True)
        exact = self._ledger.select(
            f"hash = ? AND status = 'active' AND {clause}", [digest, *params]
        )
        if exact:
            return exact[0]
        candidates: builtins.list[tuple[float, MemoryItem]] = []
        if nearest is not None:
            found = self._ledger.find([nearest.id]).get(nearest.id)
            if found is not None and found.status == "active":
                candidates.append((nearest.score, found))
        # memories added earlier in this batch are not in the store yet
        candidates.extend(batch.similar(scope, vector))
        for score, item in sorted(candidates, key=lambda c: -c[0]):
            if score < self.near_duplicate:
                break
            if _numbers(item.text) == _numbers(text):
                return item
        return None

    def nearest_stored(
        self, vectors: np.ndarray, scopes: Sequence[dict[str, str]]
    ) -> builtins.list[Hit | None]:
        """For each vector, the closest memory the store holds in exactly its scope (None
        when there is none): one store search per scope for a whole batch."""
        out: builtins.list[Hit | None] = [None] * len(scopes)
        if not self.deduplicate:
            return out
        groups: dict[tuple[tuple[str, str], ...], builtins.list[int]] = {}
        for row, scope in enumerate(scopes):
            groups.setdefault(tuple(sorted(scope.items())), []).append(row)
        for key, rows in groups.items():
            found = self.store.search(vectors[rows], k=1, where=scope_filter(dict(key), exact=True))
            for row, hits in zip(rows, found):
                out[row] = hits[0] if hits else None
        return out

    def _merge(self, item: MemoryItem, entry: MemoryInput, now: float) -> MemoryChange:
        merged_meta = {**entry.metadata, **item.metadata}  # the existing memory's values win
        with self._ledger.transaction() as db:
            self._ledger.update(
                db, item.id, mentions=item.mentions + 1, updated_at=now, metadata=merged_meta
            )
            self._ledger.record(db, item.id, "MERGE", text=entry.text, metadata=entry.metadata)
        (merged,) = self._ledger.get([item.id])
        return MemoryChange(event="MERGE", item=merged, merged_into=item.id)

    def _same_key(self, key: str, scope: dict[str, str]) -> builtins.list[MemoryItem]:
        clause, params = scope_sql(scope, exact=True)
        return self._ledger.select(f"key = ? AND status = 'active' AND {clause}", [key, *params])
