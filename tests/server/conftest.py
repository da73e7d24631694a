"""Fixtures: the app over a temporary store (HashingEmbedder), in-process or on a real port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from fastapi.testclient import TestClient

from ragmem.server.app import create_app
from ragmem.server.state import Settings

DOCS = [
    {"id": "lisbon", "text": "Lisbon is the capital of Portugal.", "metadata": {"topic": "geo"}},
    {"id": "offline", "text": "ragmem runs offline by default.", "metadata": {"topic": "ragmem"}},
    {"id": "moon", "text": "The moon is made of rock and dust.", "metadata": {"topic": "space"}},
]


def settings(store: Path, **options: Any) -> Settings:
    return Settings(store=store, embedder="hashing", embedder_options={"dimensions": 64}, **options)


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(tmp_path))) as test_client:
        yield test_client


@pytest.fixture
def docs(client) -> TestClient:
    """A client whose server has a collection 'docs' holding DOCS."""
    assert client.post("/collections", json={"name": "docs"}).status_code == 201
    reply = client.post("/collections/docs/documents", json={"documents": DOCS})
    assert reply.status_code == 200, reply.text
    return client


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 at a free port; yields the base URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
