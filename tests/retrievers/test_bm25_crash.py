"""BM25 saves under SIGKILL at random moments: nothing acknowledged is lost.

The child adds or deletes documents and saves after every operation, announcing each
operation before it starts ("begin") and acknowledging it once ``save`` has returned
("ack"). Most saves append to the log; now and then the log has outgrown the snapshot
and the save writes a new snapshot. After each kill the index must load, and hold
exactly the acknowledged operations, plus possibly the one in flight, never part of it.
"""

import functools
import os
import random

import pytest

from ragmem.retrievers import BM25Retriever
from tests.crash import replay, run_killed, settle

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

POOL = [f"k{i:02d}" for i in range(30)]
ROUNDS = 40
PADDING = " ".join(f"pad{i}" for i in range(1500))  # grows the log, so snapshots get rewritten


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
    snapshots = set()
    for round_ in range(ROUNDS):
        lines = run_killed(
            functools.partial(_writer, path, next_op, round_), rng.uniform(0.05, 0.3)
        )
        state, pending, next_op, acked_now = replay(lines, state, next_op)
        acked += acked_now
        found = _read_state(path)  # always loads
        state = settle(found, state, pending)
        assert found == state, f"round {round_}: index differs from the acknowledged writes"
        if path.exists():
            snapshots.add(path.stat().st_ino)
    assert acked > ROUNDS  # the kills landed among many saves
    assert len(snapshots) > 1  # and among snapshot rewrites, not only log appends
