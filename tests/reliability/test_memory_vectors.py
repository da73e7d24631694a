"""Agent memory's vector store is derived from the ledger: when it lacks memories the
ledger holds (its folder deleted, or damaged and set aside), opening the memory embeds
them again, instead of every search that meets one raising NotFoundError for ever."""

from __future__ import annotations

import shutil

from ragmem import HashingEmbedder
from ragmem.agents import Memory
from ragmem.stores.local import LocalVectorStore

TEXTS = ["alpha lives in Lisbon", "beta likes tea", "gamma plays chess"]


def _memory(path):
    return Memory(path, embedder=HashingEmbedder(32))


def _fill(path):
    with _memory(path) as memory:
        for text in TEXTS:
            memory.add(text, user_id="u")
        before = {t: [h.text for h in memory.search(t, user_id="u", k=3)] for t in TEXTS}
    return before


def test_a_deleted_vector_store_is_rebuilt_from_the_ledger(tmp_path):
    before = _fill(tmp_path)
    shutil.rmtree(tmp_path / "vectors")
    with _memory(tmp_path) as memory:
        after = {t: [h.text for h in memory.search(t, user_id="u", k=3)] for t in TEXTS}
    assert after == before
    with LocalVectorStore(32, path=tmp_path / "vectors", read_only=True) as store:
        assert store.count() == len(TEXTS)


def test_a_vector_store_missing_some_memories_gets_them_back(tmp_path):
    before = _fill(tmp_path)
    with _memory(tmp_path) as memory:
        lost = next(m.id for m in memory.list(user_id="u") if m.text == "beta likes tea")
    with LocalVectorStore(32, path=tmp_path / "vectors") as store:
        store.delete([lost])
    with _memory(tmp_path) as memory:
        after = {t: [h.text for h in memory.search(t, user_id="u", k=3)] for t in TEXTS}
    assert after == before
