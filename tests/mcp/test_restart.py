"""SIGKILL the server after acknowledged calls; every acknowledged memory is there after a
restart. The kill is decided by the count of acknowledgements, never by a timer."""

import contextlib
import os
import signal
import sys
import uuid

import anyio
import pytest

from .helpers import call, server_pids, stdio_client_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

WRITERS = 4
ACKS_PER_ROUND = 12
ROUNDS = 3


async def write_until_killed(store, acknowledged):
    """Concurrent writers add memories; the one whose acknowledgement reaches the round's
    count kills the server with SIGKILL while the others' calls are in flight."""
    target = len(acknowledged) + ACKS_PER_ROUND
    killed = anyio.Event()

    async def writer(client):
        while not killed.is_set():
            # words of their own: no two memories are on one subject, so each ranks first
            # for its own text whatever the recall rules (supersession of similar ones)
            text = " ".join(uuid.uuid4().hex[:8] for _ in range(5))
            result = await client.call_tool("add_memory", {"text": text})
            assert not result.is_error, result.content
            acknowledged[result.structured_content["changes"][0]["id"]] = text
            if len(acknowledged) >= target and not killed.is_set():
                (pid,) = server_pids(store)
                os.kill(pid, signal.SIGKILL)
                killed.set()

    async def session(quiet):
        client = stdio_client_for(store, "--user-id", "ana", errlog=quiet)
        async with client, anyio.create_task_group() as group:
            for _ in range(WRITERS):
                group.start_soon(writer, client)
            await killed.wait()
            group.cancel_scope.cancel()  # calls in flight die with the server

    with open(os.devnull, "w") as quiet, contextlib.suppress(Exception):
        await session(quiet)  # the connection breaks when the server is killed
    assert killed.is_set()
    while server_pids(store):  # the process is gone before the next round reopens the store
        await anyio.sleep(0.05)


async def test_every_acknowledged_memory_survives_sigkill(tmp_path):
    store = tmp_path / "store"
    acknowledged: dict[str, str] = {}
    for _ in range(ROUNDS):
        await write_until_killed(store, acknowledged)
    assert len(acknowledged) >= ROUNDS * ACKS_PER_ROUND
    async with stdio_client_for(store, "--user-id", "ana") as client:
        listed = await call(client, "list_memories", {"limit": 1000})
        texts = {m["id"]: m["text"] for m in listed["memories"]}
        assert {i: texts.get(i) for i in acknowledged} == acknowledged
        for memory_id, text in acknowledged.items():  # and search, served by the indexes
            hits = (await call(client, "search_memory", {"query": text, "k": 3}))["hits"]
            assert hits[0]["id"] == memory_id
