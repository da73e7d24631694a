"""LocalVectorStore hits and records: ordinary models that share nothing with the store."""

from __future__ import annotations

import copy
import pickle
import threading

import numpy as np
import pytest

from ragmem import LocalVectorStore
from ragmem.stores.local.locks import ReadWriteLock
from ragmem.stores.local.records import copy_metadata, stored_metadata
from ragmem.types import Hit, Metadata

INDEXES = ["flat", "hnsw"]


def _store(index: str) -> LocalVectorStore:
    if index == "hnsw":
        pytest.importorskip("faiss")
    # ef_search=1 keeps the HNSW store on its graph (not its exact small-store path)
    store = LocalVectorStore(dimensions=4, index=index, ef_search=1)  # type: ignore[arg-type]
    store.upsert(
        ["a", "b", "c"],
        np.array([[1, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 1, 0, 0]], np.float32),
        texts=["first", None, "third"],
        metadata=[{"tags": ["x", "y"], "n": 1}, {}, {"lang": "en", "score": 0.5}],
    )
    # filler orthogonal to the queries' first two dimensions: it scores 0, below "c"
    angles = np.linspace(0, np.pi / 2, 200)
    filler = np.stack([0 * angles, 0 * angles, np.cos(angles), np.sin(angles)], axis=1)
    store.upsert([f"f{i}" for i in range(200)], filler.astype(np.float32))
    return store


@pytest.mark.parametrize("index", INDEXES)
def test_hits_equal_validated_hits(index):
    store = _store(index)
    hits = store.search(np.array([1, 0.05, 0, 0], np.float32), k=3)[0]
    assert [h.id for h in hits] == ["a", "b", "c"]
    for hit in hits:
        validated = Hit(id=hit.id, score=hit.score, text=hit.text, metadata=hit.metadata)
        assert hit == validated
        assert type(hit) is Hit
        assert type(hit.score) is float
        assert hit.model_dump() == validated.model_dump()
        assert hit.model_dump_json() == validated.model_dump_json()
        assert hit.model_fields_set == validated.model_fields_set
        assert repr(hit) == repr(validated)
        assert Hit.model_validate(hit.model_dump()) == hit
        assert pickle.loads(pickle.dumps(hit)) == hit
        assert copy.deepcopy(hit) == hit
    assert hits[0].metadata == {"tags": ["x", "y"], "n": 1}
    assert hits[1].metadata == {}
    assert hits[1].text is None


@pytest.mark.parametrize("index", INDEXES)
def test_editing_hits_never_changes_the_store(index):
    store = _store(index)
    query = np.array([1, 0.05, 0, 0], np.float32)
    hits = store.search(query, k=3)[0]
    tags = hits[0].metadata["tags"]
    assert isinstance(tags, list)
    tags.append("z")
    hits[0].metadata["n"] = 99
    hits[1].metadata["new"] = True  # a row stored without metadata
    hits[2].metadata.clear()
    hits[0].explain["why"] = "edited"
    hits[0].score = -1.0
    again = store.search(query, k=3)[0]
    assert [h.metadata for h in again] == [
        {"tags": ["x", "y"], "n": 1},
        {},
        {"lang": "en", "score": 0.5},
    ]
    assert all(h.explain == {} for h in again)
    assert again[0].score > 0.9
    records = store.get(["a", "b", "c"])
    tags = records[0].metadata["tags"]
    assert isinstance(tags, list)
    tags.append("w")
    records[1].metadata["new"] = 1
    assert store.get(["a", "b"])[0].metadata == {"tags": ["x", "y"], "n": 1}
    assert store.get(["b"])[0].metadata == {}
    assert store.count(where={"tags": {"$contains": "z"}}) == 0
    assert store.count(where={"new": {"$exists": True}}) == 0


@pytest.mark.parametrize("index", INDEXES)
def test_each_hit_has_its_own_explain_and_fields_set(index):
    store = _store(index)
    first, second = store.search(np.array([1, 0, 0, 0], np.float32), k=2)[0]
    first.explain["x"] = 1
    assert second.explain == {}
    first.text = "changed"  # assignment works as on any Hit and is recorded as set
    assert "text" in first.model_fields_set
    assert second.text is None


def test_metadata_copies_share_no_lists():
    meta: Metadata = {"tags": [1, 2], "k": "v"}
    stored = stored_metadata(meta)
    out = copy_metadata(stored)
    assert out == meta
    assert type(out) is dict
    assert out["tags"] is not meta["tags"]
    scalar = stored_metadata({"k": 1})
    assert copy_metadata(scalar) == {"k": 1}
    assert copy_metadata(scalar) is not scalar
    empty = stored_metadata({})
    assert copy_metadata(empty) == {}
    assert copy_metadata(empty) is not empty


def test_read_lock_admits_readers_and_excludes_writers():
    lock = ReadWriteLock()
    events: list[str] = []
    with lock.read(), lock.read():  # the read side is re-entrant across readers
        writer = threading.Thread(target=lambda: _write(lock, events))
        writer.start()
        writer.join(0.2)
        assert writer.is_alive()  # blocked while readers hold the lock
        events.append("readers done")
    writer.join(5)
    assert not writer.is_alive()
    assert events == ["readers done", "written"]
    with lock.read():  # readers are admitted again after the writer left
        pass


def _write(lock: ReadWriteLock, events: list[str]) -> None:
    with lock.write():
        events.append("written")
