import os
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("qdrant_client")

from qdrant_client import QdrantClient

from ragmem.stores.qdrant import QdrantVectorStore
from ragmem.testing import VectorStoreContract


class TestQdrantMemory(VectorStoreContract):
    @pytest.fixture
    def store(self):
        store = QdrantVectorStore(collection="t", dimensions=8, location=":memory:")
        yield store
        store.close()


class TestQdrantClientInjected(VectorStoreContract):
    @pytest.fixture
    def store(self):
        client = QdrantClient(":memory:")
        yield QdrantVectorStore(collection="t", dimensions=8, client=client)
        client.close()


def _fast_dir() -> str | None:
    # qdrant-client's local mode commits (and fsyncs) every point to SQLite, which takes
    # minutes for the 10k-item contract test on a busy disk; a RAM-backed directory runs
    # the same path= code. The restart test in test_qdrant_store.py uses the real disk.
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


class TestQdrantOnDisk(VectorStoreContract):
    @pytest.fixture
    def store(self):
        with tempfile.TemporaryDirectory(dir=_fast_dir()) as path:
            store = QdrantVectorStore(collection="t", dimensions=8, path=path)
            yield store
            store.close()
