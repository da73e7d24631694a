"""A locked store and a full disk come back as tool errors; the server keeps answering."""

import contextlib
import subprocess
import sys

import pytest

from .helpers import call, fails, stdio_client_for


async def test_a_store_locked_by_another_server_is_a_tool_error_until_released(tmp_path):
    store = tmp_path / "store"
    async with stdio_client_for(store, "--user-id", "ana") as waiting:
        async with stdio_client_for(store, "--user-id", "ana") as holder:
            await call(holder, "add_memory", {"text": "The first server holds the memory"})
            await fails(waiting, "search_memory", {"query": "memory"}, "locked", "--store")
            await fails(waiting, "add_memory", {"text": "x"}, "locked")
            assert (await call(waiting, "list_collections", {}))["collections"] == []
        # the holder has exited: the waiting server opens the memory at its next call
        hits = (await call(waiting, "search_memory", {"query": "first server"}))["hits"]
        assert hits[0]["text"] == "The first server holds the memory"


@contextlib.contextmanager
def small_disk(path, size):
    """A tmpfs of ``size`` mounted at ``path`` (skips where mounting is not allowed)."""
    path.mkdir()
    if not sys.platform.startswith("linux"):
        pytest.skip("tmpfs mounts need Linux")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


async def test_a_full_disk_is_a_tool_error_and_acknowledged_memories_stay(tmp_path):
    with small_disk(tmp_path / "disk", "2m") as disk:
        store = disk / "store"
        acknowledged = {}
        async with stdio_client_for(store, "--user-id", "ana") as client:
            for n in range(400):
                text = f"note {n}: " + " ".join(f"w{n}x{i}" for i in range(1500))
                result = await client.call_tool("add_memory", {"text": text})
                if result.is_error:
                    assert "disk is full" in result.content[0].text, result.content[0].text
                    break
                acknowledged[result.structured_content["changes"][0]["id"]] = text
            else:
                pytest.fail("the disk never filled up")
            assert acknowledged
            # the server still answers, and what it acknowledged is readable
            listed = await call(client, "list_memories", {"limit": 1000})
            texts = {m["id"]: m["text"] for m in listed["memories"]}
            assert {i: texts.get(i) for i in acknowledged} == acknowledged
            await call(client, "search_memory", {"query": "note 1"})
