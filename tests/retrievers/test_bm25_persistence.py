import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from ragmem import ConfigurationError, CorruptIndexError, StorageError
from ragmem._storage.database import Database
from ragmem.retrievers import BM25Retriever, TextAnalyzer
from ragmem.retrievers.tokenvectors import TokenVectorStore

DATA = Path(__file__).parents[1] / "stores" / "data"


def build():
    bm25 = BM25Retriever(k1=1.5, b=0.6, tokenizer=TextAnalyzer(stopwords=None))
    bm25.add(
        ["a", "b", "c"],
        ["red fox", "lazy dog", "quick red dog"],
        metadata=[{"n": 1}, {"n": 2}, {"n": 3}],
    )
    bm25.add(["d"], ["red panda"])
    bm25.delete(["b"])
    return bm25


def test_round_trip_gives_identical_results(tmp_path):
    bm25 = build()
    path = tmp_path / "index.bm25"
    bm25.save(path)
    loaded = BM25Retriever.load(path)
    assert (loaded.k1, loaded.b, len(loaded)) == (1.5, 0.6, 3)
    for query in ["red", "dog", "the red dog"]:
        assert loaded.retrieve(query, k=5) == bm25.retrieve(query, k=5)
    assert loaded.retrieve("red", where={"n": {"$gt": 1}}) == bm25.retrieve(
        "red", where={"n": {"$gt": 1}}
    )
    # the loaded index keeps working incrementally
    loaded.add(["e"], ["red red red"])
    loaded.delete(["a"])
    assert loaded.retrieve("red", k=5)[0].id == "e"


def test_empty_index_round_trip(tmp_path):
    BM25Retriever().save(tmp_path / "empty")
    assert len(BM25Retriever.load(tmp_path / "empty")) == 0


def test_corruption_is_detected(tmp_path):
    path = tmp_path / "index.bm25"
    build().save(path)
    data = path.read_bytes()
    postings_of(path).unlink()  # every document is then read from the database
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptIndexError, match=r"index\.bm25"):
        BM25Retriever.load(path)
    flipped = bytearray(data)
    flipped[data.index(b"quick red dog") + 3] ^= 0xFF  # inside a stored document
    path.write_bytes(bytes(flipped))
    with pytest.raises(CorruptIndexError, match=r"index\.bm25"):
        BM25Retriever.load(path)
    for junk in (b"", b"not an index at all, just some bytes" * 3):
        path.write_bytes(junk)
        with pytest.raises(CorruptIndexError, match=r"index\.bm25"):
            BM25Retriever.load(path)
    with pytest.raises(StorageError):
        BM25Retriever.load(tmp_path / "missing")


def test_a_damaged_postings_cache_only_costs_a_rebuild(tmp_path):
    path = tmp_path / "index.bm25"
    bm25 = build()
    bm25.save(path)
    cache = postings_of(path)
    original = cache.read_bytes()
    for pos in range(0, len(original), max(1, len(original) // 40)):
        damaged = bytearray(original)
        damaged[pos] ^= 0xFF
        cache.write_bytes(bytes(damaged))
        assert all_hits(BM25Retriever.load(path)) == all_hits(bm25)
    cache.write_bytes(original[: len(original) // 2])
    assert all_hits(BM25Retriever.load(path)) == all_hits(bm25)


def test_crash_during_save_keeps_the_last_good_file(tmp_path, monkeypatch):
    path = tmp_path / "index.bm25"
    good = build()
    good.save(path)
    changed = build()
    changed.add(["z"], ["zebra"])

    def crash(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error: power cut")

    monkeypatch.setattr(Database, "replace_all", crash)
    with pytest.raises(StorageError, match="power cut"):
        changed.save(path)
    monkeypatch.undo()
    assert BM25Retriever.load(path).retrieve("red") == good.retrieve("red")
    assert not [p.name for p in tmp_path.iterdir() if "tmp" in p.name or "new" in p.name]


def test_old_format_files_are_refused_with_what_to_do(tmp_path):
    for name in ("keyword-0.x.bm25", "keyword-0.x.bm25.log", "tokens-0.x.bin"):
        shutil.copy(DATA / name, tmp_path / name)
    with pytest.raises(ConfigurationError, match=r"format of ragmem 0\.x.*delete it"):
        BM25Retriever.load(tmp_path / "keyword-0.x.bm25")
    with pytest.raises(ConfigurationError, match=r"format of ragmem 0\.x.*delete it"):
        TokenVectorStore.load(tmp_path / "tokens-0.x.bin")


def test_custom_tokenizer_must_be_given_back(tmp_path):
    bm25 = BM25Retriever(tokenizer=str.split)
    bm25.add(["a"], ["Hello World"])
    bm25.save(tmp_path / "i")
    with pytest.raises(ConfigurationError, match="tokenizer"):
        BM25Retriever.load(tmp_path / "i")
    assert [
        h.id for h in BM25Retriever.load(tmp_path / "i", tokenizer=str.split).retrieve("World")
    ] == ["a"]


def postings_of(path):
    return path.with_name(path.name + ".postings")


def all_hits(bm25, where=None):
    return [bm25.retrieve(q, k=10, where=where) for q in ["red", "dog", "panda zebra", "fox"]]


def test_saving_again_writes_only_the_new_writes(tmp_path, monkeypatch):
    path = tmp_path / "index.bm25"
    bm25 = build()
    bm25.save(path)
    whole = []
    monkeypatch.setattr(Database, "replace_all", lambda *a: whole.append(a))
    bm25.add(["e", "a"], ["red zebra", "grey fox"], metadata=[{"n": 5}, {"n": 9}])
    bm25.delete(where={"n": 3})
    bm25.save(path)
    bm25.add(["f"], ["panda"])
    bm25.save(path)
    assert not whole  # neither save rewrote the index
    loaded = BM25Retriever.load(path)
    assert len(loaded) == len(bm25) == 4
    assert all_hits(loaded) == all_hits(bm25)
    assert all_hits(loaded, where={"n": {"$gte": 5}}) == all_hits(bm25, where={"n": {"$gte": 5}})
    # the loaded index carries on saving only its changes
    loaded.delete(["e"])
    loaded.save(path)
    assert not whole
    bm25.delete(["e"])
    assert all_hits(BM25Retriever.load(path)) == all_hits(bm25)


def test_a_save_in_flight_lands_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "index.bm25"
    bm25 = build()
    bm25.save(path)
    bm25.add(["e"], ["red zebra"])
    bm25.save(path)
    expected = all_hits(bm25)

    def cut(self, db, items, **kwargs):  # the process dies half way through the write
        db.execute("DELETE FROM items WHERE id = 'a'")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Database, "upsert", cut)
    bm25.add(["f"], ["zebra zebra zebra"])
    with pytest.raises(StorageError):
        bm25.save(path)
    monkeypatch.undo()
    loaded = BM25Retriever.load(path)
    assert all_hits(loaded) == expected
    loaded.add(["g"], ["panda"])
    loaded.save(path)
    assert [h.id for h in BM25Retriever.load(path).retrieve("panda")] == ["g", "d"]


def test_writes_after_the_postings_cache_are_analysed_again_on_load(tmp_path):
    path = tmp_path / "index.bm25"
    bm25 = build()
    bm25.save(path)
    cached = postings_of(path).stat().st_mtime_ns
    bm25.add(["e"], ["red zebra"])
    bm25.delete(["a"])
    bm25.save(path)
    assert postings_of(path).stat().st_mtime_ns == cached  # few changes: cache not rewritten
    loaded = BM25Retriever.load(path)
    assert all_hits(loaded) == all_hits(bm25)
    assert len(loaded) == 3


def test_another_writer_makes_the_next_save_a_full_one(tmp_path):
    path = tmp_path / "index.bm25"
    build().save(path)
    first, second = BM25Retriever.load(path), BM25Retriever.load(path)
    first.add(["e"], ["red zebra"])
    first.save(path)
    second.add(["f"], ["blue whale"])
    second.save(path)  # the files changed under it: it writes its own state whole
    assert all_hits(BM25Retriever.load(path)) == all_hits(second)


def test_many_changes_rewrite_the_postings_cache(tmp_path):
    path = tmp_path / "index.bm25"
    bm25 = build()
    bm25.save(path)
    first = postings_of(path).stat().st_ino
    for i in range(30):
        bm25.add([f"big{i}"], ["word " * 50 + f"tail{i}"])
        bm25.save(path)
    assert postings_of(path).stat().st_ino != first
    assert all_hits(BM25Retriever.load(path)) == all_hits(bm25)
    assert len(BM25Retriever.load(path)) == len(bm25) == 33


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_two_processes_saving_one_file_never_mix(tmp_path):
    path = tmp_path / "index.bm25"

    def writer(name):
        bm25 = BM25Retriever()
        for i in range(15):
            bm25.add([f"{name}{i}"], [f"common {name} doc {i}"])
            bm25.save(path)  # each save: the changes, or the whole index if the other saved

    pids = []
    for name in ("left", "right"):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                writer(name)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    ids = sorted(h.id for h in BM25Retriever.load(path).retrieve("common", k=100))
    assert ids in (sorted(f"left{i}" for i in range(15)), sorted(f"right{i}" for i in range(15)))
