"""The writers whose syscalls are crash points, and how to read back what they wrote.

Each scenario prepares a saved state, then its ``work`` opens it, makes a few writes
(acknowledging each call that returned) and closes it; ``read`` reopens a directory in a
fresh object and returns its logical state, and ``expected[k]`` is the state after ``k``
acknowledged calls. A call that only saves (``compact``, ``close``) leaves it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragmem import BM25Retriever, HashingEmbedder, LocalVectorStore, NotFoundError
from ragmem.agents import Memory
from ragmem.embedders import CachedEmbedder
from ragmem.retrievers.tokenvectors import TokenVectorStore
from tests.reliability.tracing import Acks

State = Any


@dataclass
class Scenario:
    name: str
    prepare: Callable[[Path], None]
    work: Callable[[Path, Acks], None]
    read: Callable[[Path], State]
    expected: list[State]


def _model(start: dict[str, Any], steps: list[tuple[str, Any]]) -> list[State]:
    """The state after each step: ``("put", {id: value})``, ``("del", ids)``, or any other
    step (a save, a close), which changes nothing."""
    states = [dict(start)]
    for kind, arg in steps:
        state = dict(states[-1])
        if kind == "put":
            assert isinstance(arg, dict)
            state.update(arg)
        elif kind == "del":
            for id_ in arg:
                state.pop(id_, None)
        states.append(state)
    return states


# -- the vector store (flat and HNSW) ----------------------------------------------------------

_DIM = 4


def _row(id_: str, version: int) -> tuple[tuple[float, ...], str, dict[str, int]]:
    n = int(id_[1:])
    return (float(n), float(version), 1.0, -1.0), f"{id_} v{version}", {"n": n, "v": version}


def _puts(ids: list[str], version: int) -> dict[str, Any]:
    return {i: _row(i, version) for i in ids}


_STORE_BASE = [f"k{i:02d}" for i in range(12)]
_STORE_STEPS: list[tuple[str, Any]] = [
    ("put", _puts([f"k{i:02d}" for i in range(9, 15)], 1)),  # three replaced, three new
    ("del", [f"k{i:02d}" for i in range(4)]),
    ("put", _puts([f"k{i:02d}" for i in range(20, 30)], 2)),
    ("compact", []),
    ("close", []),
]
_STORE_POOL = sorted({f"k{i:02d}" for i in range(30)})


def _upsert(store: LocalVectorStore, rows: dict[str, Any]) -> None:
    ids = list(rows)
    store.upsert(
        ids,
        np.array([rows[i][0] for i in ids], np.float32),
        texts=[rows[i][1] for i in ids],
        metadata=[rows[i][2] for i in ids],
    )


def _store_scenario(index: str) -> Scenario:
    def open_store(path: Path) -> LocalVectorStore:
        return LocalVectorStore(_DIM, metric="dot", path=path, index=index, compact_after=1)  # type: ignore[arg-type]

    def prepare(base: Path) -> None:
        store = open_store(base / "store")
        _upsert(store, _puts(_STORE_BASE, 0))
        store.close()

    def work(base: Path, acks: Acks) -> None:
        store = open_store(base / "store")
        for kind, arg in _STORE_STEPS:
            if kind == "put":
                _upsert(store, arg)
            elif kind == "del":
                store.delete(arg)
            elif kind == "compact":
                store.compact()
            else:
                store.close()
            acks.ack()

    def read(base: Path) -> State:
        store = open_store(base / "store")
        try:
            state = {}
            for id_ in _STORE_POOL:
                try:
                    (record,) = store.get([id_])
                except NotFoundError:
                    continue
                vector = tuple(float(x) for x in record.vector)
                state[id_] = (vector, record.text, record.metadata)
            assert store.count() == len(state)
            if state:  # the index (flat table or graph) finds every row
                hits = store.search(np.array([0, 0, 1, 0], np.float32), k=len(_STORE_POOL))[0]
                assert sorted(h.id for h in hits) == sorted(state)
            return state
        finally:
            store.close()

    expected = _model(_puts(_STORE_BASE, 0), _STORE_STEPS)
    return Scenario(f"store-{index}", prepare, work, read, expected)


# -- BM25 ----------------------------------------------------------------------------------------


def _doc(id_: str, version: int) -> tuple[str, dict[str, int]]:
    return f"common word{id_} version{version}", {"v": version}


_BM25_BASE = [f"d{i:02d}" for i in range(10)]
_BM25_STEPS: list[tuple[str, Any]] = [
    ("put", {i: _doc(i, 1) for i in ("d08", "d09", "d10", "d11")}),
    ("del", ["d00", "d01", "d02"]),
    ("put", {f"d{i:02d}": _doc(f"d{i:02d}", 2) for i in range(20, 40)}),  # rewrites postings
]


def _bm25_add(retriever: BM25Retriever, docs: dict[str, Any]) -> None:
    ids = list(docs)
    retriever.add(ids, [docs[i][0] for i in ids], metadata=[docs[i][1] for i in ids])


def _bm25_prepare(base: Path) -> None:
    retriever = BM25Retriever()
    _bm25_add(retriever, {i: _doc(i, 0) for i in _BM25_BASE})
    retriever.save(base / "bm25.sqlite")


def _bm25_work(base: Path, acks: Acks) -> None:
    retriever = BM25Retriever.load(base / "bm25.sqlite")
    for kind, arg in _BM25_STEPS:
        if kind == "put":
            _bm25_add(retriever, arg)
        else:
            retriever.delete(arg)
        retriever.save(base / "bm25.sqlite")
        acks.ack()


def _bm25_read(base: Path) -> State:
    retriever = BM25Retriever.load(base / "bm25.sqlite")
    hits = retriever.retrieve("common", k=100)
    assert retriever.count() == len(hits)
    return {h.id: (h.text, h.metadata) for h in hits}


# -- token vectors ---------------------------------------------------------------------------


def _tokens(id_: str, version: int) -> np.ndarray:
    n = int(id_[1:])
    return np.array([[n, version, 1, 0], [0, 1, n, version], [1, 0, 0, 1]], np.float32)


_TOKENS_BASE = [f"t{i}" for i in range(6)]
_TOKENS_STEPS: list[tuple[str, Any]] = [
    ("put", {i: 1 for i in ("t4", "t5", "t6", "t7")}),
    ("del", ["t0", "t1"]),
]


def _tokens_prepare(base: Path) -> None:
    store = TokenVectorStore(4, encoding="float16")
    store.put(_TOKENS_BASE, [_tokens(i, 0) for i in _TOKENS_BASE])
    store.save(base / "tokens.bin")


def _tokens_work(base: Path, acks: Acks) -> None:
    store = TokenVectorStore.load(base / "tokens.bin")
    for kind, arg in _TOKENS_STEPS:
        if kind == "put":
            store.put(list(arg), [_tokens(i, v) for i, v in arg.items()])
        else:
            store.delete(arg)
        store.save(base / "tokens.bin")
        acks.ack()


def _tokens_read(base: Path) -> State:
    store = TokenVectorStore.load(base / "tokens.bin")
    state = {}
    for id_ in (f"t{i}" for i in range(8)):
        if id_ in store:
            matrix = store.get([id_])[0]
            versions = {v for v in range(3) if np.array_equal(matrix, _tokens(id_, v))}
            assert len(versions) == 1, f"{id_} holds a mix: {matrix}"
            state[id_] = versions.pop()
    return state


# -- agent memory ----------------------------------------------------------------------------


def _memory(base: Path) -> Memory:
    return Memory(base / "memory", embedder=HashingEmbedder(32))


_MEMORY_BASE = {"alpha lives in Lisbon": "active", "beta likes tea": "active"}
_MEMORY_STEPS: list[tuple[str, Any]] = [
    ("put", {"gamma plays chess": "active"}),
    ("put", {"delta owns a red bicycle": "active"}),
    ("put", {"beta likes tea": "deleted"}),
    ("close", []),
]


def _memory_prepare(base: Path) -> None:
    memory = _memory(base)
    for text in _MEMORY_BASE:
        memory.add(text, user_id="u")
    memory.close()


def _memory_work(base: Path, acks: Acks) -> None:
    memory = _memory(base)
    memory.add("gamma plays chess", user_id="u")
    acks.ack()
    memory.add("delta owns a red bicycle", user_id="u", metadata={"colour": "red"})
    acks.ack()
    (tea,) = [m for m in memory.list(user_id="u") if m.text == "beta likes tea"]
    memory.delete(tea.id)
    acks.ack()
    memory.close()
    acks.ack()


def _memory_read(base: Path) -> State:
    memory = _memory(base)
    try:
        items = memory.list(user_id="u", status=None)
        state = {m.text: m.status for m in items}
        assert len(state) == len(items), "a memory is stored twice"
        active = sorted(t for t, s in state.items() if s == "active")
        found = memory.search("alpha beta gamma delta", user_id="u", k=20)
        assert sorted(h.text or "" for h in found) == active  # the indexes agree with the ledger
        return state
    finally:
        memory.close()


# -- the embedding cache ---------------------------------------------------------------------


class _Recording(HashingEmbedder):
    """A hashing embedder that remembers which texts it was asked to embed."""

    def __init__(self) -> None:
        super().__init__(16)
        self.seen: set[str] = set()

    def _embed_batch(self, texts, purpose):
        self.seen.update(texts)
        return super()._embed_batch(texts, purpose)


_CACHE_BASE = [f"cached text {i}" for i in range(4)]
_CACHE_BATCHES = [[f"new text {i}" for i in range(5)], [f"more text {i}" for i in range(3)]]
_CACHE_ALL = _CACHE_BASE + [t for batch in _CACHE_BATCHES for t in batch]


def _cache(base: Path, embedder: HashingEmbedder) -> CachedEmbedder:
    return CachedEmbedder(embedder, path=base / "cache" / "embeddings.sqlite")


def _cache_prepare(base: Path) -> None:
    with _cache(base, HashingEmbedder(16)) as cache:
        cache.embed(_CACHE_BASE)


def _cache_work(base: Path, acks: Acks) -> None:
    cache = _cache(base, HashingEmbedder(16))
    for batch in _CACHE_BATCHES:
        cache.embed(batch + _CACHE_BASE[:2])
        acks.ack()
    cache.close()
    acks.ack()


def _cache_read(base: Path) -> State:
    recording = _Recording()
    with _cache(base, recording) as cache:
        vectors = cache.embed(_CACHE_ALL)
    assert np.array_equal(vectors, HashingEmbedder(16).embed(_CACHE_ALL))
    return {t: True for t in _CACHE_ALL if t not in recording.seen}


def _cache_expected() -> list[State]:
    base = {t: True for t in _CACHE_BASE}
    steps: list[tuple[str, Any]] = [("put", {t: True for t in b}) for b in _CACHE_BATCHES]
    return _model(base, [*steps, ("close", [])])


SCENARIOS = [
    _store_scenario("flat"),
    _store_scenario("hnsw"),
    Scenario(
        "bm25",
        _bm25_prepare,
        _bm25_work,
        _bm25_read,
        _model({i: _doc(i, 0) for i in _BM25_BASE}, _BM25_STEPS),
    ),
    Scenario(
        "token-vectors",
        _tokens_prepare,
        _tokens_work,
        _tokens_read,
        _model(dict.fromkeys(_TOKENS_BASE, 0), _TOKENS_STEPS),
    ),
    Scenario(
        "memory", _memory_prepare, _memory_work, _memory_read, _model(_MEMORY_BASE, _MEMORY_STEPS)
    ),
    Scenario("embedding-cache", _cache_prepare, _cache_work, _cache_read, _cache_expected()),
]
