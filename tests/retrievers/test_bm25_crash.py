"""BM25 saves under SIGKILL at random moments: nothing acknowledged is lost.

The child adds or deletes documents and saves after every operation, announcing each
operation before it starts ("begin") and acknowledging it once ``save`` has returned
("ack"). Every save is one SQLite transaction of the changed documents; now and then
so many documents changed that the save also rewrites the postings cache. The parent
kills the child after a random number of operations (by progress, not by time). After
each kill the index must load, and hold exactly the acknowledged operations, plus
possibly the one in flight, never part of it.
"""

import functools
import os
import random

import pytest

from ragmem._storage.cache_file import read_cache
from ragmem.retrievers import BM25Retriever
from tests.crash import replay, run_killed, settle

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

POOL = [f"k{i:02d}" for i in range(30)]
ROUNDS = 40
PADDING = " ".join(f"pad{i}" for i in range(200))


def _text(op, pos):
    return f"common op{op} pos{pos} {PADDING}"


def _writer(path, first_op, seed, fd):
    """The child: adds and deletes for ever, saving after each and acknowledging it."""
    out = os.fdopen(fd, "w", buffering=1)
    bm25 = BM25Retriever.load(path) if path.exists() else BM25Retriever()
    rng = random.Random(seed)
    op = first_op
    while True:
        if rng.random() < 0.75:
            ids = rng.sample(POOL, rng.randint(1, 4))
            print(f"begin {op} add {' '.join(ids)}", file=out, flush=True)
            texts = [_text(op, pos) for pos in range(len(ids))]
            bm25.add(ids, texts, metadata=[{"op": op, "pos": pos} for pos in range(len(ids))])
        else:
            ids = rng.sample(POOL, rng.randint(1, 3))
            print(f"begin {op} delete {' '.join(ids)}", file=out, flush=True)
            bm25.delete(ids)
        bm25.save(path)
        print(f"ack {op}", file=out, flush=True)
        op += 1


def _read_state(path):
    if not path.exists():
        return {}
    bm25 = BM25Retriever.load(path)
    state = {}
    for hit in bm25.retrieve("common", k=len(POOL) + 1):
        op, pos = hit.metadata["op"], hit.metadata["pos"]
        assert hit.text == _text(op, pos)
        state[hit.id] = (op, pos)
    assert len(bm25) == len(state)
    return state


def test_sigkill_during_saves_loses_nothing_acknowledged(tmp_path):
    rng = random.Random(7)
    path = tmp_path / "index.bm25"
    state: dict = {}
    next_op = acked = 0
    caches = set()
    postings = path.with_name(path.name + ".postings")
    for round_ in range(ROUNDS):
        lines = run_killed(functools.partial(_writer, path, next_op, round_), rng.randint(1, 60))
        state, pending, next_op, acked_now = replay(lines, state, next_op)
        acked += acked_now
        found = _read_state(path)  # always loads
        state = settle(found, state, pending)
        assert found == state, f"round {round_}: index differs from the acknowledged writes"
        cache = read_cache(postings, {})
        if cache is not None:
            caches.add(cache[0]["generation"])
    assert acked > ROUNDS  # the kills landed among many saves
    assert len(caches) > 1  # and among postings rewrites, not only document writes
