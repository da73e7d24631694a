"""Memory survives SIGKILL: acknowledged memories are kept, the indexes agree with the ledger,
and a purge killed at any moment leaves its memories wholly present or wholly gone.

The parent decides when to kill from the writer's progress (the n-th line it reports),
never from a timer, so the kill lands at varied points of the next write or purge.
"""

import os
import random
import signal

import pytest

from ragmem import HashingEmbedder
from ragmem.agents import Memory

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

ROUNDS = 15
PER_PURGE = 3


def _writer(path, first, fd):
    out = os.fdopen(fd, "w", buffering=1)
    memory = Memory(path, embedder=HashingEmbedder(32), deduplicate=False)
    n = first
    while True:
        user = f"u{n % 3}"
        memory.add(f"fact number {n} for {user}", user_id=user, session_id=f"s{n % 2}")
        if n % 5 == 0:
            (item,) = [
                m for m in memory.list(user_id=user) if m.text.startswith(f"fact number {n} ")
            ]
            memory.update(item.id, f"fact number {n} for {user} (revised)")
        if n % 4 == 0:  # a user to erase, then the erase
            for i in range(PER_PURGE):
                memory.add(f"purge fact {i} of p{n}", user_id=f"p{n}", session_id="s")
            print(f"purging {n}", file=out, flush=True)
            memory.purge(user_id=f"p{n}")
            print(f"purged {n}", file=out, flush=True)
        print(f"ack {n}", file=out, flush=True)
        n += 1


def _check(path):
    memory = Memory(path, embedder=HashingEmbedder(32), deduplicate=False)
    try:
        items = memory.list(status=None)
        texts = {m.text for m in items}
        active = [m for m in items if m.status == "active"]
        assert memory.store.count({"_status": "active"}) == len(active)
        users = {m.user_id for m in active}
        for user in users | {"u0", "u1", "u2"}:
            mine = [m for m in active if m.user_id == user]
            found = memory.search("fact number purge", user_id=user, k=len(active) + 1)
            assert {h.id for h in found} == {m.id for m in mine}
            assert memory.store.count({"user_id": user}) == len(mine)
            if user.startswith("p"):  # a purge is all or nothing
                assert len(mine) in (0, PER_PURGE)
        return texts
    finally:
        memory.close()


def test_sigkill_during_adds_and_purges_loses_nothing_acknowledged(tmp_path):
    rng = random.Random(7)
    path = tmp_path / "memory"
    acked = -1
    for _ in range(ROUNDS):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child is killed
            os.close(read_fd)
            try:
                _writer(path, acked + 1, write_fd)
            finally:
                os._exit(1)
        os.close(write_fd)
        pipe = os.fdopen(read_fd)
        lines = [pipe.readline().strip() for _ in range(rng.randint(1, 12))]
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        lines += pipe.read().splitlines()
        pipe.close()
        acks = [int(line.split()[1]) for line in lines if line.startswith("ack ")]
        purged = [int(line.split()[1]) for line in lines if line.startswith("purged ")]
        acked = max(acks, default=acked)
        texts = _check(path)
        for n in acks:
            user = f"u{n % 3}"
            revised = f"fact number {n} for {user} (revised)"
            assert f"fact number {n} for {user}" in texts or revised in texts
        for n in purged:
            assert not any(t.endswith(f" of p{n}") for t in texts)
    assert acked > 0
