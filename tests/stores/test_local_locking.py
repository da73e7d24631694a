"""LocalVectorStore across processes (one writer) and threads (many readers, one writer)."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from ragmem import LocalVectorStore, StoreLockedError
from ragmem.testing.stores import unit_vectors

ROOT = Path(__file__).resolve().parents[2]

# Opens the store for writing, says so, then holds it until told to exit (or killed).
HOLDER = """
import sys
import numpy as np
from ragmem import LocalVectorStore
store = LocalVectorStore(4, path=sys.argv[1])
store.upsert(["held"], np.ones((1, 4), np.float32))
print("locked", flush=True)
sys.stdin.readline()
store.close()
print("released", flush=True)
"""


@pytest.fixture
def holder(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_process_gets_store_locked_error(tmp_path, holder):
    with pytest.raises(StoreLockedError) as info:
        LocalVectorStore(4, path=tmp_path)
    assert str(tmp_path) in str(info.value)
    with LocalVectorStore(4, path=tmp_path, read_only=True) as reader:
        assert reader.count() == 1


def test_waits_for_the_lock_when_asked(tmp_path, holder):
    # released by the holder only after we have started waiting
    timer = threading.Timer(0.3, lambda: (holder.stdin.write("go\n"), holder.stdin.flush()))
    timer.start()
    try:
        with LocalVectorStore(4, path=tmp_path, lock_timeout=60) as store:
            assert store.get(["held"])[0].id == "held"
    finally:
        timer.cancel()
    assert holder.stdout.readline().strip() == "released"


def test_lock_of_a_killed_writer_is_released(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with LocalVectorStore(4, path=tmp_path) as store:
        assert store.count() == 1


def test_many_reader_threads_and_one_writer(tmp_path):
    store = LocalVectorStore(8, path=tmp_path)
    base = unit_vectors(200, seed=1)
    store.upsert([f"b{i}" for i in range(200)], base, metadata=[{"g": i % 4} for i in range(200)])
    errors = []
    stop = threading.Event()

    def read():
        queries = unit_vectors(3, seed=2)
        try:
            while not stop.is_set():
                for hits in store.search(queries, k=5, where={"g": {"$in": [1, 2]}}):
                    assert len(hits) == 5
                    assert all(h.metadata["g"] in (1, 2) for h in hits)
                assert store.count() >= 200
        except Exception as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for i in range(40):
            store.upsert([f"w{i}"], np.roll(base[:1], i, axis=1), metadata=[{"g": i % 4}])
            if i % 3 == 0:
                store.delete([f"w{i // 2}"])
            if i % 10 == 0:
                store.compact()
    finally:
        stop.set()
        for t in readers:
            t.join()
        store.close()
    assert errors == []
    with LocalVectorStore(8, path=tmp_path) as reopened:
        assert reopened.count() == 200 + 40 - len({i // 2 for i in range(0, 40, 3)})


# Writes and saves its caches over and over, saying how many rows it has written.
CHURNER = """
import sys
import numpy as np
from ragmem import LocalVectorStore
store = LocalVectorStore(4, path=sys.argv[1], compact_after=1)
for i in range(40):
    store.upsert([f"r{i}"], np.full((1, 4), i + 1, np.float32))
    if i % 3 == 0:
        store.delete([f"r{i}"])
    store.compact()
    print(i, flush=True)
store.close()
"""


def test_read_only_opens_while_the_writer_saves_caches_always_succeed(tmp_path):
    path = tmp_path / "store"
    LocalVectorStore(4, path=path).close()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-c", CHURNER, str(path)], stdout=subprocess.PIPE, env=env
    )
    assert child.stdout is not None
    seen = 0
    for line in child.stdout:  # one read-only open per write, while the next one runs
        written = int(line) + 1
        with LocalVectorStore(4, path=path, read_only=True) as reader:
            count = reader.count()
        assert written - (written + 2) // 3 <= count <= written
        seen += 1
    assert child.wait() == 0
    assert seen == 40
