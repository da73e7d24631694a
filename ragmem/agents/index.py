"""Keeps memory's indexes (vector store, BM25, token vectors) in step with the ledger.

Changes reach the indexes only through the ledger's outbox: ``sync`` applies queued
changes and then marks them done, so a crash in between is repaired by the next
``sync`` (at the latest when the memory is opened again). BM25 and the token-vector
index live in RAM and are rebuilt from the ledger on open.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from ragmem.agents.recall import JointEmbedder, Recall, RecallWeights
from ragmem.agents.records import Ledger, MemoryItem
from ragmem.agents.scope import DIGEST, index_metadata
from ragmem.embedders.base import Embedder
from ragmem.errors import NotFoundError
from ragmem.filters import Filter, matches
from ragmem.stores.base import VectorStore
from ragmem.types import Hit, Metadata

__all__ = ["MemoryIndex"]

Session = tuple[str | None, str | None, str]


def _as_stored(matrix: np.ndarray) -> np.ndarray:
    """Token vectors rounded as the ledger stores them (float16), so a reopened memory
    scores exactly like the running one."""
    out: np.ndarray = matrix.astype(np.float16).astype(np.float32)
    return out


class MemoryIndex:
    """The derived indexes of one ``Memory``."""

    def __init__(
        self, ledger: Ledger, embedder: Embedder, store: VectorStore, weights: RecallWeights
    ) -> None:
        self.ledger = ledger
        self.embedder = embedder
        self.store = store
        self.recall = Recall(embedder=embedder, store=store, weights=weights)
        # vectors embedded by the current write, not yet indexed
        self.fresh: dict[str, np.ndarray] = {}
        self.fresh_tokens: dict[str, np.ndarray] = {}
        self._token_hash: dict[str, str] = {}
        # memories of each (user, agent, session) in time order, for neighbour smoothing
        self._sessions: dict[Session, list[tuple[float, int, str]]] = defaultdict(list)
        self._added = 0  # insertion counter: orders memories that share a timestamp
        self._session_of: dict[str, Session] = {}
        self._order: dict[str, int] = {}  # first-indexing order, kept across updates
        self._meta: dict[str, Metadata] = {}  # index metadata, to test neighbours against filters
        self._lock = threading.RLock()
        self._load()
        self.sync()

    def _load(self) -> None:
        items = self.ledger.select("status != 'deleted' ORDER BY timestamp, rowid")
        if not items:
            return
        items_by_id = {i.id: i for i in items}
        tokens = (
            self.ledger.tokens(self.embedder.dimensions) if self.recall.tokens is not None else {}
        )
        current = {i: m for i, (h, m) in tokens.items() if h == items_by_id[i].hash}
        self._index(items, current)
        self._token_hash.update((i, tokens[i][0]) for i in current)
        if self.store.count() < len(items):
            # the store lost memories the ledger holds (its folder deleted or damaged):
            # embed those again, rather than fail every search that meets one
            metadata = [index_metadata(i) for i in items]
            vectors = self._dense_vectors(items, metadata)
            self.store.upsert([i.id for i in items], vectors, metadata=metadata)

    def sync(self) -> None:
        """Apply queued ledger changes to every index (idempotent)."""
        with self._lock:
            pending = self.ledger.pending()
            if not pending:
                return
            ids = list(dict.fromkeys(mid for _, mid in pending))
            items = self.ledger.find(ids)
            gone = [i for i in ids if i not in items or items[i].status == "deleted"]
            live = [items[i] for i in ids if i in items and items[i].status != "deleted"]
            # a change that leaves text, scope and lifecycle as indexed (a repeated fact
            # counted once more) has nothing to re-index
            live = [i for i in live if self._meta.get(i.id) != index_metadata(i)]
            if gone:
                self.store.delete(gone)
                self.recall.remove(gone)
                self._forget_sessions(gone)
            if live:
                metadata = [index_metadata(i) for i in live]
                self.store.upsert(
                    [i.id for i in live], self._dense_vectors(live, metadata), metadata=metadata
                )
                self._index(live, self._token_vectors(live))
            self.ledger.done([seq for seq, _ in pending])
            self.discard_fresh()

    def discard_fresh(self) -> None:
        """Drop vectors embedded for a write (applied, or rolled back)."""
        self.fresh.clear()
        self.fresh_tokens.clear()

    def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Dense vectors of ``texts`` and, when the embedder gives both from one forward
        pass and recall uses them, their token vectors (as stored); else None."""
        embedder = self.embedder
        if self.recall.tokens is not None and isinstance(embedder, JointEmbedder):
            dense, tokens = embedder.embed_with_tokens(texts)
            return dense, [_as_stored(m) for m in tokens]
        return embedder.embed(texts), None

    def _index(self, items: list[MemoryItem], tokens: dict[str, np.ndarray]) -> None:
        with_tokens = [i for i in items if i.id in tokens]
        metadata = [index_metadata(i) for i in items]
        self.recall.index([i.id for i in items], [i.text for i in items], metadata)
        self.recall.put_tokens([i.id for i in with_tokens], [tokens[i.id] for i in with_tokens])
        self._forget_sessions([i.id for i in items])
        self._meta.update(zip([i.id for i in items], metadata))
        touched = set()
        for item in items:
            if item.session_id is not None:
                session = (item.user_id, item.agent_id, item.session_id)
                self._session_of[item.id] = session
                if item.id not in self._order:
                    self._added += 1
                    self._order[item.id] = self._added
                self._sessions[session].append((item.timestamp, self._order[item.id], item.id))
                touched.add(session)
        for session in touched:
            self._sessions[session].sort()

    def _forget_sessions(self, ids: list[str]) -> None:
        for id_ in ids:
            self._meta.pop(id_, None)
            session = self._session_of.pop(id_, None)
            if session is not None:
                self._sessions[session] = [e for e in self._sessions[session] if e[2] != id_]

    def _dense_vectors(self, items: list[MemoryItem], metadata: list[Metadata]) -> np.ndarray:
        out = np.empty((len(items), self.embedder.dimensions), np.float32)
        unknown = [i.id for i in items if i.id not in self.fresh]
        stored = {}
        if unknown:
            try:
                stored = {r.id: r for r in self.store.get(unknown)}
            except NotFoundError as exc:  # some are new to the store: embed those below
                missing = set(exc.ids)
                present = [i for i in unknown if i not in missing]
                stored = {r.id: r for r in self.store.get(present)} if present else {}
        todo = []
        for row, item in enumerate(items):
            record = stored.get(item.id)
            if item.id in self.fresh:
                out[row] = self.fresh[item.id]
            elif record is not None and record.metadata.get(DIGEST) == metadata[row][DIGEST]:
                out[row] = record.vector
            else:
                todo.append(row)
        if todo:
            # changed texts (updates, repairs): their token vectors come from the same pass
            dense, tokens = self.embed([items[r].text for r in todo])
            out[todo] = dense
            if tokens is not None:
                self.fresh_tokens.update((items[r].id, m) for r, m in zip(todo, tokens))
        return out

    def _token_vectors(self, items: list[MemoryItem]) -> dict[str, np.ndarray]:
        embedder = self.recall.token_embedder
        if embedder is None or self.recall.tokens is None:
            return {}
        stale = [i for i in items if self._token_hash.get(i.id) != i.hash]
        computed = {i.id: self.fresh_tokens[i.id] for i in stale if i.id in self.fresh_tokens}
        todo = [i for i in stale if i.id not in computed]
        if todo:
            matrices = embedder.embed_tokens([i.text for i in todo])
            computed.update((i.id, _as_stored(m)) for i, m in zip(todo, matrices))
        if stale:
            self.ledger.put_tokens([(i.id, i.hash, computed[i.id]) for i in stale])
            self._token_hash.update((i.id, i.hash) for i in stale)
        keep = [i.id for i in items if i.id not in computed and i.id in self.recall.tokens]
        if keep:
            computed.update(zip(keep, self.recall.tokens.get(keep)))
        return computed

    def neighbors(self, ids: list[str], where: Filter | None = None) -> dict[str, list[str]]:
        """The previous and next memory of each id in its session (by timestamp), among
        the memories that match ``where``: a neighbour must pass the query's scope, filter,
        status and TTL test like any other candidate."""
        out: dict[str, list[str]] = {}
        for id_ in ids:
            session = self._session_of.get(id_)
            if session is None:
                continue
            entries = self._sessions[session]
            position = next(j for j, entry in enumerate(entries) if entry[2] == id_)
            # walk outwards to the nearest memory on each side that passes the filter
            found = []
            for steps in (range(position - 1, -1, -1), range(position + 1, len(entries))):
                for j in steps:
                    other = entries[j][2]
                    if where is None or matches(where, self._meta[other]):
                        found.append(other)
                        break
            out[id_] = found
        return out

    def search(self, query: str, k: int, where: Filter) -> list[Hit]:
        """Relevance-ranked hits (ids and scores; the caller fills text and metadata)."""
        return self.recall.search(
            query,
            k,
            where,
            neighbors_of=lambda ids: self.neighbors(ids, where),
            roles_of=lambda ids: [self._meta[i].get("role") for i in ids],
        )
