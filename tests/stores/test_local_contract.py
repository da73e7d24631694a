import pytest

from ragmem import LocalVectorStore
from ragmem.testing import VectorStoreContract


class TestLocalVectorStore(VectorStoreContract):
    @pytest.fixture
    def store(self):
        return LocalVectorStore(dimensions=8)
