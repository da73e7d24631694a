import pytest

from ragmem import LocalVectorStore
from ragmem.testing import VectorStoreContract


class TestLocalVectorStore(VectorStoreContract):
    @pytest.fixture
    def store(self):
        return LocalVectorStore(dimensions=8)


class TestPersistentLocalVectorStore(VectorStoreContract):
    """The same contract on disk, with tiny compaction thresholds so snapshots happen too."""

    @pytest.fixture
    def store(self, tmp_path):
        store = LocalVectorStore(dimensions=8, path=tmp_path / "store", compact_after=1)
        yield store
        store.close()


class TestReopenedLocalVectorStore(VectorStoreContract):
    """Every write is checked after the store is closed and opened again."""

    @pytest.fixture
    def store(self, tmp_path):
        store = _ReopeningStore(tmp_path / "store")
        yield store
        store.close()


class _ReopeningStore(LocalVectorStore):
    """Reopens itself from disk after each write, so reads see only what was persisted."""

    def __init__(self, path):
        super().__init__(dimensions=8, path=path)

    def _upsert(self, *args):
        super()._upsert(*args)
        self._reopen()

    def _delete(self, ids, where):
        count = super()._delete(ids, where)
        self._reopen()
        return count

    def _reopen(self):
        path = self.path
        self.close()
        LocalVectorStore.__init__(self, dimensions=8, path=path)
