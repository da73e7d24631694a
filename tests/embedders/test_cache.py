import logging
import multiprocessing
import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragmem import CachedEmbedder, ConfigurationError, CorruptIndexError, HashingEmbedder
from ragmem._storage.database import translate
from ragmem.errors import StorageError, StoreLockedError
from ragmem.testing import EmbedderContract


class CountingEmbedder(HashingEmbedder):
    """HashingEmbedder that records every text it was asked to embed."""

    def __init__(self, dimensions=32, **options):
        super().__init__(dimensions, **options)
        self.seen = []

    def _embed_batch(self, texts, purpose):
        self.seen.extend(texts)
        return super()._embed_batch(texts, purpose)


class TestCachedEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self, tmp_path):
        cached = CachedEmbedder(HashingEmbedder(64), path=tmp_path / "cache.sqlite", batch_size=8)
        yield cached
        cached.close()


@pytest.fixture
def path(tmp_path):
    return tmp_path / "sub" / "cache.sqlite"


def test_second_pass_is_served_from_the_file(path):
    texts = [f"passage {i}" for i in range(50)]
    inner = CountingEmbedder()
    with CachedEmbedder(inner, path=path) as first:
        vectors = first.embed(texts)
        assert (first.hits, first.misses) == (0, 50)
        assert len(first) == 50
    np.testing.assert_array_equal(vectors, HashingEmbedder(32).embed(texts))

    inner2 = CountingEmbedder()
    with CachedEmbedder(inner2, path=path) as second:
        again = second.embed(texts[::-1])[::-1]
        assert (second.hits, second.misses) == (50, 0)
    assert inner2.seen == []
    np.testing.assert_array_equal(again, vectors)


def test_only_misses_reach_the_embedder_once_each(path):
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, path=path)
    cached.embed(["a", "b"])
    got = cached.embed(["b", "c", "c", "a", "d"])
    assert inner.seen == ["a", "b", "c", "d"]
    assert (cached.hits, cached.misses) == (2, 5)  # per position; c embedded once
    np.testing.assert_array_equal(got, HashingEmbedder(32).embed(["b", "c", "c", "a", "d"]))


def test_key_includes_model_dimensions_and_purpose(path):
    a = CachedEmbedder(HashingEmbedder(32, seed=1), path=path)
    b = CachedEmbedder(HashingEmbedder(32, seed=2), path=path)
    c = CachedEmbedder(HashingEmbedder(16, seed=1), path=path)
    va, vb, vc = (e.embed(["same text"]) for e in (a, b, c))
    assert b.misses == 1
    assert c.misses == 1
    assert not np.allclose(va, vb)
    assert vc.shape == (1, 16)
    a.embed(["same text"], purpose="query")
    assert a.misses == 2
    a.embed(["same text"], purpose="query")
    assert a.hits == 1
    np.testing.assert_array_equal(a.embed(["same text"]), va)


async def test_async_uses_the_cache(path):
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, path=path)
    first = await cached.embed_async(["x", "y"])
    second = await cached.embed_async(["y", "x"])
    assert inner.seen == ["x", "y"]
    assert (cached.hits, cached.misses) == (2, 2)
    np.testing.assert_array_equal(second, first[::-1])


def test_clear_and_len(path):
    cached = CachedEmbedder(HashingEmbedder(32), path=path)
    other = CachedEmbedder(HashingEmbedder(32, seed=5), path=path)
    cached.embed(["a", "b"])
    other.embed(["a"])
    cached.clear()
    assert len(cached) == 0
    assert len(other) == 1


def test_garbage_file_is_reported_or_rebuilt(path, caplog):
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not an sqlite database" * 100)
    with pytest.raises(CorruptIndexError, match=r"cache\.sqlite"):
        CachedEmbedder(HashingEmbedder(32), path=path)
    with caplog.at_level(logging.WARNING, logger="ragmem.embedders.cache"):
        cached = CachedEmbedder(HashingEmbedder(32), path=path, on_corrupt="rebuild")
    assert "rebuilding" in caplog.text
    np.testing.assert_array_equal(cached.embed(["ok"]), HashingEmbedder(32).embed(["ok"]))


def test_truncated_file_is_detected(path):
    texts = [f"text number {i}" for i in range(3000)]
    with CachedEmbedder(HashingEmbedder(64), path=path) as cached:
        cached.embed(texts)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    # SQLite may notice at open (integrity check) or only when it reads a missing page
    with pytest.raises(CorruptIndexError, match=r"cache\.sqlite"):  # noqa: PT012
        cached = CachedEmbedder(HashingEmbedder(64), path=path)
        cached.embed(texts)


def _tamper(path, sql, *params):
    db = sqlite3.connect(path)
    with db:
        db.execute(sql, params)
    db.close()


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("UPDATE vectors SET vector = ?", (np.ones(32, "<f4").tobytes(),)),
        ("UPDATE vectors SET vector = ?", (np.ones(31, "<f4").tobytes(),)),
        ("UPDATE vectors SET checksum = ?", (b"0" * 16,)),
        # a valid vector of another text, moved under this text's key
        (
            "UPDATE vectors SET vector = (SELECT vector FROM vectors ORDER BY text_sha256 LIMIT 1)"
            " WHERE text_sha256 = (SELECT MAX(text_sha256) FROM vectors)",
            (),
        ),
    ],
)
def test_tampered_rows_never_come_back(path, sql, params):
    texts = ["first", "second"]
    expected = HashingEmbedder(32).embed(texts)
    with CachedEmbedder(HashingEmbedder(32), path=path) as cached:
        cached.embed(texts)
    _tamper(path, sql, *params)
    with pytest.raises(CorruptIndexError, match="checksum"):
        CachedEmbedder(HashingEmbedder(32), path=path).embed(texts)
    repaired = CachedEmbedder(HashingEmbedder(32), path=path, on_corrupt="rebuild")
    np.testing.assert_array_equal(repaired.embed(texts), expected)
    np.testing.assert_array_equal(
        CachedEmbedder(HashingEmbedder(32), path=path).embed(texts), expected
    )


def test_newer_format_is_refused(path):
    CachedEmbedder(HashingEmbedder(32), path=path).close()
    _tamper(path, "UPDATE meta SET value = '999' WHERE key = 'format_version'")
    with pytest.raises(CorruptIndexError, match="format"):
        CachedEmbedder(HashingEmbedder(32), path=path)


@pytest.mark.parametrize("options", [{"on_corrupt": "ignore"}, {"batch_size": 0}])
def test_bad_options(path, options):
    with pytest.raises(ConfigurationError):
        CachedEmbedder(HashingEmbedder(32), path=path, **options)


def _worker(path, start, queue):
    cached = CachedEmbedder(HashingEmbedder(48), path=path, batch_size=25)
    texts = [f"shared text {i}" for i in range(start, start + 400)]
    for offset in range(0, len(texts), 25):
        cached.embed(texts[offset : offset + 25])
    queue.put((cached.hits, cached.misses))


def test_two_processes_share_one_file(path):
    path.parent.mkdir(parents=True)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_worker, args=(str(path), s, queue)) for s in (0, 200)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    counts = [queue.get(timeout=5) for _ in workers]
    assert all(hits + misses == 400 for hits, misses in counts)
    texts = [f"shared text {i}" for i in range(600)]
    check = CachedEmbedder(HashingEmbedder(48), path=path)
    np.testing.assert_array_equal(check.embed(texts), HashingEmbedder(48).embed(texts))
    assert (check.hits, check.misses) == (600, 0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(min_size=1).filter(str.strip), max_size=20))
def test_cached_equals_uncached(tmp_path_factory, texts):
    path = tmp_path_factory.mktemp("prop") / "cache.sqlite"
    with CachedEmbedder(HashingEmbedder(16), path=path, batch_size=7) as cached:
        np.testing.assert_array_equal(cached.embed(texts), HashingEmbedder(16).embed(texts))
        hits, misses = cached.hits, cached.misses
        np.testing.assert_array_equal(cached.embed(texts), HashingEmbedder(16).embed(texts))
        assert (cached.hits - hits, cached.misses - misses) == (len(texts), 0)


_HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "rollback":
    # a writer in rollback-journal mode: its exclusive lock blocks readers too
    db.execute("PRAGMA journal_mode = DELETE")
    db.execute("BEGIN EXCLUSIVE")
else:
    db.execute("BEGIN IMMEDIATE")
db.execute("INSERT OR REPLACE INTO meta VALUES ('holder', 'yes')")
print("locked", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
db.close()
"""


@pytest.fixture
def lock_holder():
    """Starts a second process that holds the database's write lock until released."""
    import subprocess
    import sys

    started = []

    def hold(path, mode):
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(path), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(holder)
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        return holder

    yield hold
    for holder in started:
        if holder.poll() is None:
            holder.communicate("release\n", timeout=60)


@pytest.mark.parametrize("mode", ["wal", "rollback"])
def test_a_busy_database_is_waited_for_then_reported_never_rebuilt(path, lock_holder, mode):
    texts = [f"kept text {i}" for i in range(1000)]
    with CachedEmbedder(HashingEmbedder(32), path=path) as cached:
        cached.embed(texts)
    holder = lock_holder(path, mode)
    with pytest.raises(StoreLockedError, match=r"cache\.sqlite"):  # noqa: PT012
        busy = CachedEmbedder(HashingEmbedder(32), path=path, on_corrupt="rebuild", timeout=0.2)
        busy.embed(["a text not cached yet"])
    holder.communicate("release\n", timeout=60)
    with CachedEmbedder(HashingEmbedder(32), path=path) as cached:
        assert len(cached) == 1000
        cached.embed(texts)
        assert (cached.hits, cached.misses) == (1000, 0)


def test_a_busy_database_raises_a_typed_error_on_write(path, lock_holder):
    with CachedEmbedder(HashingEmbedder(32), path=path, timeout=0.2) as cached:
        cached.embed(["first"])
        lock_holder(path, "wal")
        # readers are not blocked by a writer in WAL mode
        np.testing.assert_array_equal(cached.embed(["first"]), HashingEmbedder(32).embed(["first"]))
        with pytest.raises(StoreLockedError):
            cached.embed(["second"])


_FILLER = """
import resource, signal, sys
from ragmem import CachedEmbedder, HashingEmbedder, StorageError, CorruptIndexError
path, limit = sys.argv[1], int(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
cached = CachedEmbedder(HashingEmbedder(384), path=path, on_corrupt="rebuild")
try:
    for start in range(0, 100_000, 500):
        cached.embed([f"new text {i}" for i in range(start, start + 500)])
except CorruptIndexError as exc:
    print("corrupt", exc)
except StorageError as exc:
    print("storage", exc)
else:
    print("no error")
"""


def test_a_full_disk_is_a_storage_error_not_corruption(path):
    import os
    import subprocess
    import sys

    texts = [f"kept text {i}" for i in range(200)]
    with CachedEmbedder(HashingEmbedder(384), path=path) as cached:
        cached.embed(texts)
    limit = os.path.getsize(path) + 200_000
    run = subprocess.run(
        [sys.executable, "-c", _FILLER, str(path), str(limit)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert run.stdout.startswith("storage"), run.stdout + run.stderr
    assert "not a readable" not in run.stdout
    with CachedEmbedder(HashingEmbedder(384), path=path) as cached:
        cached.embed(texts)
        assert cached.misses == 0


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("database is locked", StoreLockedError),
        ("database disk image is malformed", CorruptIndexError),
        ("file is not a database", CorruptIndexError),
        ("disk I/O error", StorageError),
    ],
)
def test_sqlite_errors_without_a_code_are_told_apart_by_message(path, message, error):
    # Python before 3.11 gives sqlite3 errors no result code
    exc = sqlite3.OperationalError(message)
    translated = translate(exc, path, what="embedding cache")
    assert type(translated) is error
    assert str(path) in str(translated)
