"""``ragmem repair``: a damaged database keeps every intact row, and says which it dropped.

Each test damages the SQLite file the way disks and people do (a flipped byte in a
vector or in metadata, a page overwritten, the file cut short), checks that opening it
raises CorruptIndexError naming the file and pointing to the repair, repairs it through
the command line, and then finds every good row, bit for bit, and a store that searches.
"""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from ragmem import (
    BM25Retriever,
    CorruptIndexError,
    LocalVectorStore,
    NotFoundError,
    StoreLockedError,
)
from ragmem._storage.repair import repair
from ragmem.cli import main

N = 600
DIM = 4


def _vector(i: int) -> np.ndarray:
    return np.array([i + 0.5, 1234.25, -7.0, 3.0], np.float32)


def _store(path, index="flat"):
    with LocalVectorStore(DIM, metric="dot", path=path, index=index) as store:
        ids = [f"id{i}" for i in range(N)]
        store.upsert(
            ids,
            np.stack([_vector(i) for i in range(N)]),
            texts=[f"text {i}" for i in range(N)],
            metadata=[{"n": i, "tag": f"t{i % 7}"} for i in range(N)],
        )
    for cache in ("table.cache", "graph.cache"):  # so opening reads every row
        (path / cache).unlink(missing_ok=True)


def _damage(path, needle: bytes, replace) -> int:
    data = bytearray(path.read_bytes())
    at = data.find(needle)
    assert at >= 0
    assert data.find(needle, at + 1) < 0, "the bytes to damage are not unique"
    replace(data, at)
    path.write_bytes(bytes(data))
    return at


def _repair_cli(target, capsys) -> tuple[int, str, str]:
    code = main(["repair", str(target)])
    out, err = capsys.readouterr()
    return code, out, err


def _check_rows(path, index="flat"):
    """Every row left is exactly as written; the store counts and searches them all."""
    with LocalVectorStore(DIM, metric="dot", path=path, index=index) as store:
        ids = [f"id{i}" for i in range(N)]
        present = []
        for i in range(N):
            try:
                (record,) = store.get([ids[i]])
            except NotFoundError:
                continue
            present.append(i)
            assert record.vector.tolist() == _vector(i).tolist()
            assert record.text == f"text {i}"
            assert record.metadata == {"n": i, "tag": f"t{i % 7}"}
        assert store.count() == len(present)
        hits = store.search(_vector(3), k=N)[0]
        assert sorted(h.id for h in hits) == sorted(ids[i] for i in present)
        assert store.count(where={"tag": "t3"}) == sum(i % 7 == 3 for i in present)
    return present


def _expect_corrupt_pointing_to_repair(path, index="flat", what=None):
    with pytest.raises(CorruptIndexError) as info:
        LocalVectorStore(DIM, metric="dot", path=path, index=index)
    assert info.value.path == str(path / "store.sqlite")
    assert "ragmem repair" in str(info.value)
    if what is not None:
        assert what in str(info.value)


@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_a_flipped_byte_in_a_vector_costs_that_row_only(tmp_path, capsys, index):
    _store(tmp_path, index)
    database = tmp_path / "store.sqlite"

    def flip(data, at):
        data[at + 5] ^= 0x40

    _damage(database, _vector(17).tobytes(), flip)
    _expect_corrupt_pointing_to_repair(tmp_path, index, what="'id17'")

    code, out, _ = _repair_cli(tmp_path, capsys)
    assert code == 0
    assert "kept 599 rows, dropped 1" in out
    assert "'id17': fails its checksum" in out
    present = _check_rows(tmp_path, index)
    assert present == [i for i in range(N) if i != 17]
    backups = list(tmp_path.glob("store.sqlite.damaged-*"))
    assert len(backups) == 1
    assert backups[0].read_bytes() != database.read_bytes()
    # a second run finds nothing more to do
    code, out, _ = _repair_cli(tmp_path, capsys)
    assert code == 0
    assert "no damage found (599 rows)" in out
    assert len(list(tmp_path.glob("store.sqlite.damaged-*"))) == 1


def test_flipped_metadata_costs_that_row_only(tmp_path, capsys):
    _store(tmp_path)

    def flip(data, at):
        data[at + len(b'{"n":')] = ord("9")  # {"n":251,...} now says 951

    _damage(tmp_path / "store.sqlite", b'{"n":251,', flip)
    _expect_corrupt_pointing_to_repair(tmp_path, what="'id251'")
    code, out, _ = _repair_cli(tmp_path / "store.sqlite", capsys)  # the file, as errors name it
    assert code == 0
    assert "dropped row 252 'id251': fails its checksum" in out
    assert _check_rows(tmp_path) == [i for i in range(N) if i != 251]


def test_an_overwritten_page_costs_the_rows_on_it(tmp_path, capsys):
    _store(tmp_path)
    database = tmp_path / "store.sqlite"
    page = 4096  # SQLite's default page size

    def wipe(data, at):
        start = at // page * page
        data[start : start + page] = bytes(range(256)) * (page // 256)

    _damage(database, _vector(300).tobytes(), wipe)
    _expect_corrupt_pointing_to_repair(tmp_path)
    code, out, _ = _repair_cli(tmp_path, capsys)
    assert code == 0
    present = _check_rows(tmp_path)
    lost = sorted(set(range(N)) - set(present))
    assert 300 in lost
    assert len(lost) < 100  # one page of rows, not the table
    # the id index still names the rows that were on the page
    for i in lost:
        assert f"'id{i}'" in out


def test_a_truncated_file_keeps_the_rows_before_the_cut(tmp_path, capsys):
    _store(tmp_path)
    database = tmp_path / "store.sqlite"
    database.write_bytes(database.read_bytes()[: database.stat().st_size * 2 // 3])
    _expect_corrupt_pointing_to_repair(tmp_path)
    code, out, _ = _repair_cli(tmp_path, capsys)
    assert code == 0
    present = _check_rows(tmp_path)
    assert 0 < len(present) < N
    assert "kept" in out


def test_nothing_to_salvage_fails_and_leaves_the_file(tmp_path, capsys):
    _store(tmp_path)
    database = tmp_path / "store.sqlite"
    for damaged in (b"", b"x" * 8192):
        database.write_bytes(damaged)
        code, _, err = _repair_cli(tmp_path, capsys)
        assert code == 1
        assert "nothing could be salvaged" in err
        assert database.read_bytes() == damaged
        assert not list(tmp_path.glob("*.damaged-*"))


def test_an_index_in_use_is_not_touched(tmp_path):
    _store(tmp_path)
    before = (tmp_path / "store.sqlite").read_bytes()
    with LocalVectorStore(DIM, metric="dot", path=tmp_path), pytest.raises(StoreLockedError):
        repair(tmp_path)
    assert (tmp_path / "store.sqlite").read_bytes() == before
    assert not list(tmp_path.glob("*.damaged-*"))


def test_a_damaged_bm25_index_keeps_its_good_documents(tmp_path, capsys):
    path = tmp_path / "docs.bm25"
    bm25 = BM25Retriever()
    bm25.add([f"d{i}" for i in range(50)], [f"common word{i}" for i in range(50)])
    bm25.save(path)

    def flip(data, at):
        data[at + len("common ")] = ord("X")  # "word23" becomes "Xord23"

    _damage(path, b"common word23", flip)
    (tmp_path / "docs.bm25.postings").unlink()
    with pytest.raises(CorruptIndexError, match="ragmem repair"):
        BM25Retriever.load(path)
    code, out, _ = _repair_cli(path, capsys)
    assert code == 0
    assert "'d23': fails its checksum" in out
    loaded = BM25Retriever.load(path)
    assert loaded.count() == 49
    assert [h.id for h in loaded.retrieve("word24", k=3)] == ["d24"]


def test_a_clean_database_is_left_alone(tmp_path, capsys):
    _store(tmp_path)
    before = (tmp_path / "store.sqlite").read_bytes()
    code, out, _ = _repair_cli(tmp_path, capsys)
    assert code == 0
    assert f"no damage found ({N} rows)" in out
    assert (tmp_path / "store.sqlite").read_bytes() == before


def test_a_repaired_database_keeps_its_settings_and_journal(tmp_path, capsys):
    _store(tmp_path)
    _damage(tmp_path / "store.sqlite", _vector(5).tobytes(), lambda d, at: d.__setitem__(at, 0))
    assert _repair_cli(tmp_path, capsys)[0] == 0
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        meta = dict(db.execute("SELECT key, value FROM meta"))
    assert json.loads(meta["config"]) == {"dimensions": DIM, "metric": "dot"}
    assert meta["kind"] == "ragmem-local-store"


def test_a_pipeline_index_drops_the_hurt_source_until_it_is_indexed_again(tmp_path, capsys):
    src, index = tmp_path / "src", tmp_path / "index"
    src.mkdir()
    for name, words in [("a.txt", "apples and pears"), ("b.txt", "zebras graze"), ("c.txt", "")]:
        (src / name).write_text(f"{words or 'clouds drift'} in file {name}\n")
    assert main(["index", str(src), "--store", str(index), "--embedder", "hashing"]) == 0
    (index / "vectors" / "table.cache").unlink()  # so opening reads every row

    def flip(data, at):
        data[at] = ord("Z")

    _damage(index / "vectors" / "store.sqlite", b"zebras graze", flip)
    capsys.readouterr()
    assert main(["search", "zebras", "--store", str(index)]) == 1
    assert "ragmem repair" in capsys.readouterr().err

    code, out, _ = _repair_cli(index, capsys)
    assert code == 0
    assert "dropped 1" in out
    assert "1 source(s) lost chunks" in out
    assert "b.txt" in out
    assert "keyword.bm25 is rebuilt" in out
    assert main(["search", "apples", "--store", str(index)]) == 0
    assert "a.txt" in capsys.readouterr().out

    assert main(["index", str(src), "--store", str(index)]) == 0
    capsys.readouterr()
    assert main(["search", "zebras graze", "--store", str(index), "--k", "1"]) == 0
    assert "b.txt" in capsys.readouterr().out
    with LocalVectorStore(index_dims(index), path=index / "vectors", read_only=True) as store:
        assert store.count() == 3


def index_dims(index) -> int:
    with sqlite3.connect(index / "vectors" / "store.sqlite") as db:
        (config,) = db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    return int(json.loads(config)["dimensions"])


def test_an_agent_memory_is_refused_untouched(tmp_path):
    from ragmem import ConfigurationError, HashingEmbedder
    from ragmem.agents import Memory

    with Memory(tmp_path, embedder=HashingEmbedder(16)) as memory:
        memory.add("a fact", user_id="u")
    for target in (tmp_path, tmp_path / "vectors", tmp_path / "vectors" / "store.sqlite"):
        with pytest.raises(ConfigurationError, match="agent memory"):
            repair(target)
