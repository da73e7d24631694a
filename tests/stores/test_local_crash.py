"""Crash safety: a writer process is SIGKILLed at random moments, and nothing acknowledged is lost.

The child announces each operation before calling the store ("begin") and acknowledges
it when the call has returned ("ack"), writing straight to a pipe. After each kill the
reopened store must hold exactly the acknowledged operations, plus possibly the one
operation that had begun (it may have reached the log before the kill), never part of it.
"""

import functools
import os
import random

import numpy as np
import pytest

from ragmem import LocalVectorStore, NotFoundError
from ragmem._storage.cache_file import read_cache
from tests.crash import State, replay, run_killed, settle

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

POOL = [f"k{i:02d}" for i in range(40)]
DIM = 4
ROUNDS = 60


def _vectors(op, n):
    # exact small integers, so values read back can be compared bit for bit
    return np.array([[op, pos, 1, -1] for pos in range(n)], np.float32)


def _writer(path, first_op, seed, fd):
    """The child: upserts and deletes for ever, announcing and acknowledging each."""
    out = os.fdopen(fd, "w", buffering=1)
    store = LocalVectorStore(DIM, metric="dot", path=path, compact_after=4096, lock_timeout=10)
    rng = random.Random(seed)
    op = first_op
    while True:
        if rng.random() < 0.75:
            ids = rng.sample(POOL, rng.randint(1, 8))
            print(f"begin {op} upsert {' '.join(ids)}", file=out, flush=True)
            store.upsert(
                ids,
                _vectors(op, len(ids)),
                texts=[f"op{op}"] * len(ids),
                metadata=[{"op": op, "pos": pos} for pos in range(len(ids))],
            )
        else:
            ids = rng.sample(POOL, rng.randint(1, 4))
            print(f"begin {op} delete {' '.join(ids)}", file=out, flush=True)
            store.delete(ids)
        print(f"ack {op}", file=out, flush=True)
        op += 1


def _read_state(store):
    """id -> (op, pos) for every stored id, checking that vector, text and metadata agree."""
    state = {}
    for id_ in POOL:
        try:
            (record,) = store.get([id_])
        except NotFoundError:
            continue
        op, pos = record.metadata["op"], record.metadata["pos"]
        assert record.metadata == {"op": op, "pos": pos}
        assert record.text == f"op{op}"
        assert record.vector.tolist() == [op, pos, 1, -1]
        state[id_] = (op, pos)
    assert store.count() == len(state)
    hits = store.search(np.array([0, 0, 1, 0], np.float32), k=len(POOL))[0]
    assert sorted(h.id for h in hits) == sorted(state)
    return state


def test_sigkill_at_random_moments_loses_nothing_acknowledged(tmp_path):
    rng = random.Random(2024)
    path = tmp_path / "store"
    state: State = {}
    next_op = 0
    seen_ops = cache_saves = 0
    saved = None
    for round_ in range(ROUNDS):
        lines = run_killed(functools.partial(_writer, path, next_op, round_), rng.randint(1, 40))
        state, pending, next_op, acked_now = replay(lines, state, next_op)
        seen_ops += acked_now
        if _cache_generation(path) != saved:  # the writer saved its caches this round
            cache_saves += 1
        with LocalVectorStore(DIM, metric="dot", path=path) as store:  # always opens
            found = _read_state(store)
        saved = _cache_generation(path)  # as the reopened store saved them on close
        state = settle(found, state, pending)
        assert found == state, f"round {round_}: store differs from the acknowledged writes"
    # the kills landed while writes (and cache saves) were happening
    assert seen_ops > ROUNDS
    assert cache_saves > 1


def _cache_generation(path):
    found = read_cache(path / "table.cache", {})
    return None if found is None else found[0]["generation"]
