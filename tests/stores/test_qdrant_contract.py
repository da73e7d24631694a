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


class TestQdrantOnDisk(VectorStoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        store = QdrantVectorStore(collection="t", dimensions=8, path=tmp_path / "qdrant")
        yield store
        store.close()
