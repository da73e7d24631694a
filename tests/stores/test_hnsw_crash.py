"""Crash safety of the derived graph: a writer is SIGKILLed mid-update, the reopened store is right.

The writer upserts and deletes in a loop with small compaction thresholds, so a kill lands
inside graph inserts, graph rebuilds (tombstone compaction) and graph file writes. After each
kill the store is reopened with ``index="hnsw"`` (the graph loaded or rebuilt) and its
results are checked against exact search over the same directory.
"""

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")

from ragmem import LocalVectorStore

DIM = 16
ROUNDS = 5
ROOT = Path(__file__).resolve().parents[2]

WRITER = f"""
import sys, numpy as np
from ragmem import LocalVectorStore
path, seed = sys.argv[1], int(sys.argv[2])
store = LocalVectorStore({DIM}, path=path, index="hnsw", ef_construction=32,
                         compact_after=256 * 1024, lock_timeout=30)
rng = np.random.default_rng(seed)
print("ready", flush=True)
while True:
    print("begin", flush=True)
    ids = [f"p{{i}}" for i in rng.choice(3000, 200, replace=False)]
    if rng.random() < 0.8:
        store.upsert(ids, rng.standard_normal((200, {DIM})).astype(np.float32))
    else:
        store.delete(ids[:50])
    if rng.random() < 0.1:
        store.compact()
"""


@pytest.fixture(autouse=True)
def _one_faiss_thread():
    faiss = pytest.importorskip("faiss")
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def _check(path: Path) -> None:
    graph = LocalVectorStore(DIM, path=path, index="hnsw", ef_construction=32, lock_timeout=30)
    exact = LocalVectorStore(DIM, path=path, read_only=True)
    try:
        assert graph.count() == exact.count()
        assert not list(path.glob("*.tmp*"))  # a half-written graph file was cleaned up
        if exact.count() == 0:
            return
        queries = np.random.default_rng(1).standard_normal((30, DIM)).astype(np.float32)
        got, want = graph.search(queries, k=10), exact.search(queries, k=10)
        hits = sum(len({h.id for h in a} & {h.id for h in b}) for a, b in zip(got, want))
        assert hits / sum(len(b) for b in want) >= 0.9
        ids = [hit.id for hit in exact.search(queries[:1], k=40)[0]]
        for record in exact.get(ids):
            assert graph.search(record.vector, k=1)[0][0].id == record.id
    finally:
        graph.close()
        exact.close()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL semantics")
def test_kill_during_graph_updates_then_reopen(tmp_path):
    path = tmp_path / "store"
    rng = random.Random(0)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    for seed in range(ROUNDS):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(seed)],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        for _ in range(rng.randint(1, 60)):  # kill by progress: after this many writes began
            child.stdout.readline()
        child.kill()
        child.wait()
        _check(path)
