"""SIGKILL while clients write: every acknowledged item survives whole. SIGTERM drains."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ragmem import HashingEmbedder
from ragmem.agents.memory import Memory
from ragmem.pipeline import RAGPipeline

KILLS = 20
EMBEDDER = ["--embedder", "hashing", "--embedder-options", json.dumps({"dimensions": 64})]


class Server:
    """``ragmem serve`` in a child process on a port it chooses itself."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        command = [sys.executable, "-m", "ragmem.cli", "serve", "--store", str(self.store)]
        command += ["--port", "0", "--log-level", "info", *EMBEDDER]
        self.process = subprocess.Popen(
            command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        assert self.process.stderr is not None
        for line in self.process.stderr:  # uvicorn names the port it bound
            found = re.search(r"running on http://127\.0\.0\.1:(\d+)", line, re.IGNORECASE)
            if found:
                self.url = f"http://127.0.0.1:{found.group(1)}"
                break
        else:
            raise RuntimeError(f"the server did not start (exit {self.process.wait()})")
        # keep draining stderr so the child never blocks on a full pipe
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def signal(self, number: int) -> int:
        assert self.process is not None
        self.process.send_signal(number)
        return self.process.wait(60)

    def kill(self) -> None:
        """Kill the child if it still runs: a failed test must not leave it behind."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(60)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A ``Server`` over ``tmp_path``, killed at teardown whatever the test did."""
    found = Server(tmp_path)
    yield found
    found.kill()


class Writers:
    """Two clients writing documents and memories, recording what was acknowledged."""

    def __init__(self) -> None:
        self.url = ""
        self.acked_docs: list[str] = []
        self.acked_memories: list[str] = []
        self.changed = threading.Condition()
        self.up = threading.Event()
        self.stop = False

    def text(self, doc: int) -> str:
        # about 2,600 characters: several chunks, so a half-written document would show
        return " ".join(f"doc{doc} sentence {i} about rivers and engines." for i in range(60))

    def documents(self) -> None:
        n = 0
        while not self.stop:
            self.up.wait()
            body = {"documents": [{"id": f"d{n}", "text": self.text(n)}]}
            try:
                reply = httpx.post(f"{self.url}/collections/docs/documents", json=body, timeout=30)
            except httpx.HTTPError:
                n += 1
                continue
            if reply.status_code == 200:
                with self.changed:
                    self.acked_docs.append(f"d{n}")
                    self.changed.notify_all()
            n += 1

    def memories(self) -> None:
        n = 0
        while not self.stop:
            self.up.wait()
            body = {"text": f"fact number m{n} about the garden", "user_id": "u"}
            try:
                reply = httpx.post(f"{self.url}/memories", json=body, timeout=30)
            except httpx.HTTPError:
                n += 1
                continue
            if reply.status_code == 200:
                with self.changed:
                    self.acked_memories.append(f"fact number m{n} about the garden")
                    self.changed.notify_all()
            n += 1

    def wait_for_progress(self, docs: int, memories: int) -> None:
        with self.changed:
            done = self.changed.wait_for(
                lambda: len(self.acked_docs) >= docs and len(self.acked_memories) >= memories,
                timeout=600,  # a safety net against a stuck server, not the kill trigger
            )
        assert done, "the writers made no progress"


def _check_store(store: Path, writers: Writers) -> None:
    chunks_per_doc = None
    with RAGPipeline(store / "docs", read_only=True) as rag:
        for key, entry in rag.manifest.entries.items():
            count = rag.store.count(where={"doc_id": key.removeprefix("doc:")})
            assert count == len(entry["chunks"]), f"{key} is half-present"
            chunks_per_doc = chunks_per_doc or count
        present = {key.removeprefix("doc:") for key in rag.manifest.entries}
        missing = [d for d in writers.acked_docs if d not in present]
        assert not missing, f"acknowledged documents lost: {missing}"
        assert rag.store.count() == chunks_per_doc * len(present)
    with Memory(store / "_memory" / "default", embedder=HashingEmbedder(64)) as memory:
        texts = [m.text for m in memory.list(user_id="u")]
        lost = [t for t in writers.acked_memories if t not in texts]
        assert not lost, f"acknowledged memories lost: {lost}"
        assert len(texts) == len(set(texts))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_never_loses_an_acknowledged_write(tmp_path, server):
    writers = Writers()
    server.start()
    assert (
        httpx.post(f"{server.url}/collections", json={"name": "docs"}, timeout=60).status_code
        == 201
    )
    writers.url = server.url
    threads = [
        threading.Thread(target=t, daemon=True) for t in (writers.documents, writers.memories)
    ]
    for thread in threads:
        thread.start()
    writers.up.set()
    try:
        for _ in range(KILLS):
            # kill once each writer has had a few more writes acknowledged
            writers.wait_for_progress(len(writers.acked_docs) + 1, len(writers.acked_memories) + 1)
            writers.up.clear()
            server.signal(signal.SIGKILL)
            server.start()
            writers.url = server.url
            writers.up.set()
        writers.wait_for_progress(len(writers.acked_docs) + 1, len(writers.acked_memories) + 1)
    finally:
        writers.stop = True
        server.signal(signal.SIGKILL)
        writers.up.set()
    for thread in threads:
        thread.join(60)
    assert len(writers.acked_docs) > KILLS
    _check_store(tmp_path, writers)
    # and the restarted server serves every acknowledged memory through search
    server.start()
    try:
        query = {"query": "fact number about the garden", "user_id": "u", "k": 100}
        hits = httpx.post(f"{server.url}/memories/search", json=query, timeout=30).json()
        assert {h["text"] for h in hits} >= set(writers.acked_memories[-100:])
    finally:
        server.signal(signal.SIGKILL)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM drain is POSIX")
def test_sigterm_finishes_in_flight_requests_then_exits(tmp_path, server):
    server.start()
    assert (
        httpx.post(f"{server.url}/collections", json={"name": "docs"}, timeout=60).status_code
        == 201
    )
    documents = [{"id": f"d{i}", "text": f"document {i} " * 40} for i in range(1000)]
    result: dict[str, int] = {}

    def ingest() -> None:
        reply = httpx.post(
            f"{server.url}/collections/docs/documents", json={"documents": documents}, timeout=120
        )
        result["status"] = reply.status_code
        result["added"] = len(reply.json()["added"])

    caller = threading.Thread(target=ingest)
    caller.start()
    for _ in range(100_000):  # until the server holds the request (progress, not time)
        metrics = httpx.get(f"{server.url}/metrics", timeout=60).text
        if "ragmem_http_in_flight 1.0" in metrics or "status" in result:
            break
    # uvicorn re-raises the signal once it has shut down gracefully
    assert server.signal(signal.SIGTERM) in (0, -signal.SIGTERM)
    caller.join(120)
    assert result == {"status": 200, "added": 1000}
    with RAGPipeline(tmp_path / "docs", read_only=True) as rag:
        assert len(rag.manifest.entries) == 1000
