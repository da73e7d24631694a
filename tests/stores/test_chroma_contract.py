import uuid

import pytest

pytest.importorskip("chromadb")

from ragmem.stores.chroma import ChromaVectorStore
from ragmem.testing import VectorStoreContract


def fresh_name() -> str:
    # in-memory Chroma stores of one process share one system: a new name isolates a test
    return f"t-{uuid.uuid4().hex[:12]}"


class TestChromaEphemeral(VectorStoreContract):
    @pytest.fixture
    def store(self):
        store = ChromaVectorStore(collection=fresh_name(), dimensions=8)
        yield store
        store.close()


class TestChromaPersistent(VectorStoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        store = ChromaVectorStore(collection="t-persistent", dimensions=8, path=tmp_path / "chroma")
        yield store
        store.close()
