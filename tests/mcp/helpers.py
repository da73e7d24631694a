"""Starting `ragmem mcp` as a real process, and a walk through every tool that any
transport must pass."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

TOOLS = {
    "add_memory",
    "search_memory",
    "get_memory",
    "list_memories",
    "update_memory",
    "delete_memory",
    "memory_history",
    "purge_memories",
    "search_documents",
    "add_document",
    "list_collections",
}


def server_args(store: Path, *extra: str) -> list[str]:
    """Arguments of `python -m ragmem.cli mcp` on ``store`` with the hashing embedder."""
    return ["-m", "ragmem.cli", "mcp", "--store", str(store), "--embedder", "hashing", *extra]


def stdio_client_for(store: Path, *extra: str, errlog: Any = None) -> Client:
    """An SDK client that starts the server over stdio (PYTHONPATH and all inherited)."""
    params = StdioServerParameters(
        command=sys.executable, args=server_args(store, *extra), env=dict(os.environ)
    )
    log = errlog if errlog is not None else sys.__stderr__
    return Client(stdio_client(params, errlog=log))


def server_pids(store: Path) -> list[int]:
    """Pids of `ragmem mcp` processes serving ``store`` (found through /proc)."""
    marker = str(store).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"ragmem.cli" in argv and b"mcp" in argv and marker in argv:
            pids.append(int(entry.name))
    return pids


class HttpServer:
    """`ragmem mcp --transport http` on 127.0.0.1 and a free port, as a subprocess."""

    def __init__(self, store: Path, *extra: str, log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, *server_args(store, "--transport", "http", "--port", "0", *extra)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
            env=dict(os.environ),
        )
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        # the server prints its address once it listens; a safety limit only, not a timing
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = re.search(r"serving (http://\S+)", self.log.read_text(errors="replace"))
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text(errors='replace')}")
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


@contextlib.contextmanager
def http_server(store: Path, *extra: str, log: Path) -> Any:
    server = HttpServer(store, *extra, log=log)
    try:
        yield server
    finally:
        server.close()


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call a tool that must succeed; returns its structured content."""
    result = await client.call_tool(tool, arguments)
    text = result.content[0].text if result.content else ""
    assert not result.is_error, f"{tool} failed: {text}"
    assert result.structured_content is not None
    assert text.strip()  # the model always gets readable text too
    return result.structured_content


async def fails(client: Client, tool: str, arguments: dict[str, Any], *needles: str) -> str:
    """Call a tool that must fail with a tool error naming each of ``needles``."""
    result = await client.call_tool(tool, arguments)
    text = result.content[0].text if result.content else ""
    assert result.is_error, f"{tool}({arguments}) should have failed, got {text}"
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    return text


async def exercise_tools(client: Client) -> dict[str, str]:
    """List the tools and call each one, checking results and errors; returns some ids."""
    listed = (await client.list_tools()).tools
    assert {t.name for t in listed} >= TOOLS
    for tool in listed:
        assert len(tool.description or "") > 30, tool.name
        assert tool.output_schema is not None, tool.name
        for name, schema in tool.input_schema.get("properties", {}).items():
            assert schema.get("description"), f"{tool.name}.{name} has no description"

    lisbon = await call(client, "add_memory", {"text": "I live in Lisbon", "key": "home_city"})
    (change,) = lisbon["changes"]
    assert change["event"] == "ADD"
    old_id = change["id"]
    porto = await call(client, "add_memory", {"text": "I moved to Porto", "key": "home_city"})
    assert porto["changes"][0]["event"] == "SUPERSEDE"
    assert porto["changes"][0]["superseded"] == old_id
    new_id = porto["changes"][0]["id"]
    again = await call(client, "add_memory", {"text": "i moved to  porto"})
    assert again["changes"][0] == {**again["changes"][0], "event": "MERGE", "id": new_id}
    chat = await call(
        client,
        "add_memory",
        {
            "messages": [
                {"role": "user", "content": "My sister Rita plays the cello"},
                {"role": "system", "content": "be brief"},
            ],
            "session_id": "s1",
            "metadata": {"topic": "family"},
            "observed_at": "2024-03-01T10:00:00Z",
        },
    )
    (rita,) = chat["changes"]  # system messages are not remembered

    found = await call(client, "search_memory", {"query": "where do I live", "k": 2})
    assert found["hits"][0]["id"] == new_id
    assert len(found["hits"]) == 2
    assert all({"id", "score", "text", "observed_at"} <= h.keys() for h in found["hits"])
    assert old_id not in [h["id"] for h in found["hits"]]  # superseded: hidden from search
    scoped = await call(
        client, "search_memory", {"query": "cello", "where": {"topic": "family"}, "k": 5}
    )
    assert [h["id"] for h in scoped["hits"]] == [rita["id"]]
    assert scoped["hits"][0]["observed_at"] == "2024-03-01T10:00:00Z"
    assert scoped["hits"][0]["session_id"] == "s1"

    got = (await call(client, "get_memory", {"memory_id": old_id}))["memory"]
    assert (got["status"], got["superseded_by"], got["key"]) == ("superseded", new_id, "home_city")
    listed_all = await call(client, "list_memories", {"status": "all"})
    assert {m["id"] for m in listed_all["memories"]} == {old_id, new_id, rita["id"]}
    active = await call(client, "list_memories", {"session_id": "s1"})
    assert [m["id"] for m in active["memories"]] == [rita["id"]]

    updated = await call(
        client, "update_memory", {"memory_id": rita["id"], "text": "Rita plays the viola"}
    )
    assert updated["memory"]["text"] == "Rita plays the viola"
    history = await call(client, "memory_history", {"memory_id": rita["id"]})
    assert [e["event"] for e in history["events"]] == ["ADD", "UPDATE"]
    assert history["events"][1]["text"] == "My sister Rita plays the cello"
    deleted = await call(client, "delete_memory", {"memory_id": rita["id"]})
    assert deleted["status"] == "deleted"
    gone = await call(client, "search_memory", {"query": "Rita viola", "k": 5})
    assert rita["id"] not in [h["id"] for h in gone["hits"]]

    # errors come back as tool errors, and the server keeps answering
    await fails(client, "get_memory", {"memory_id": "no-such-id"}, "unknown memory id")
    await fails(client, "update_memory", {"memory_id": "no-such-id", "text": "x"}, "unknown")
    await fails(client, "add_memory", {}, "either text or messages")
    await fails(client, "add_memory", {"text": "a", "messages": [{"role": "user", "content": "b"}]})
    await fails(client, "add_memory", {"text": "a", "infer": True}, "--model")
    await fails(client, "search_memory", {"query": "x", "k": 0}, "k")
    await fails(client, "search_memory", {"query": ""}, "query")
    await fails(client, "search_memory", {"query": "x", "where": {"a": {"$nope": 1}}}, "$nope")
    await fails(client, "search_memory", {"query": "x", "after": "last week"}, "ISO 8601")
    await fails(client, "update_memory", {"memory_id": new_id}, "text, metadata or importance")
    await fails(client, "purge_memories", {}, "exactly one of")
    await fails(client, "no_such_tool", {}, "no_such_tool")

    added = await call(
        client,
        "add_document",
        {
            "text": "The warranty covers parts for two years. Labour is not covered.",
            "collection": "manuals",
            "doc_id": "warranty",
            "metadata": {"lang": "en"},
        },
    )
    assert (added["event"], added["chunks"]) == ("added", 1)
    await call(client, "add_document", {"text": "Opening hours: 9 to 5.", "collection": "faq"})
    same = await call(
        client,
        "add_document",
        {
            "text": "The warranty covers parts for two years. Labour is not covered.",
            "collection": "manuals",
            "doc_id": "warranty",
            "metadata": {"lang": "en"},
        },
    )
    assert same["event"] == "unchanged"
    assert (await call(client, "list_collections", {}))["collections"] == ["faq", "manuals"]
    docs = await call(client, "search_documents", {"query": "how long is the warranty", "k": 1})
    (hit,) = docs["hits"]
    assert (hit["collection"], hit["doc_id"], hit["start"]) == ("manuals", "warranty", 0)
    filtered = await call(
        client, "search_documents", {"query": "warranty", "where": {"lang": "de"}}
    )
    assert filtered["hits"] == []
    await fails(client, "search_documents", {"query": "x", "collection": "nope"}, "faq, manuals")
    await fails(client, "add_document", {"text": "x", "collection": "../escape"}, "collection")
    await fails(client, "add_document", {"text": "x", "collection": "_memory"}, "collection")
    return {"old": old_id, "new": new_id, "rita": rita["id"]}
