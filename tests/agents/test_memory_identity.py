"""A memory directory records its embedder and refuses another; a failed open releases
everything it acquired; a missing ledger beside indexes that hold data is corruption."""

import pytest

from ragmem import ConfigurationError, CorruptIndexError, HashingEmbedder, LocalVectorStore
from ragmem.agents import Memory
from tests.agents.helpers import TokenHashingEmbedder


def test_another_embedder_of_the_same_dimension_is_refused(tmp_path):
    with Memory(tmp_path, embedder=HashingEmbedder(32, seed=1)) as memory:
        memory.add("Ana lives in Lisbon", user_id="ana")
    with pytest.raises(ConfigurationError) as err:
        Memory(tmp_path, embedder=HashingEmbedder(32, seed=2))
    assert "hashing-32-1" in str(err.value)
    assert "hashing-32-2" in str(err.value)
    # the failed open released the store's lock: the right embedder opens it at once
    with Memory(tmp_path, embedder=HashingEmbedder(32, seed=1)) as memory:
        assert memory.search("Lisbon", user_id="ana")[0].text == "Ana lives in Lisbon"


def test_reopening_without_an_embedder_rebuilds_the_recorded_one(tmp_path):
    with Memory(tmp_path, embedder=HashingEmbedder(48, seed=3)) as memory:
        memory.add("Ana lives in Lisbon", user_id="ana")
    with Memory(tmp_path) as memory:
        assert memory.embedder.name == "hashing-48-3"
        assert memory.search("Lisbon", user_id="ana")[0].text == "Ana lives in Lisbon"


def test_an_embedder_that_cannot_be_rebuilt_must_be_passed(tmp_path):
    with Memory(tmp_path, embedder=TokenHashingEmbedder(16)) as memory:
        memory.add("Ana lives in Lisbon", user_id="ana")
    with pytest.raises(ConfigurationError, match="hash-tokens-16"):
        Memory(tmp_path)
    with Memory(tmp_path, embedder=TokenHashingEmbedder(16)) as memory:
        assert len(memory.list(user_id="ana")) == 1


@pytest.mark.parametrize("damage", ["empty", "missing"])
def test_a_lost_ledger_beside_indexed_data_is_corruption(tmp_path, damage):
    with Memory(tmp_path, embedder=HashingEmbedder(32)) as memory:
        memory.add("Ana lives in Lisbon", user_id="ana")
    for extra in tmp_path.glob("memory.sqlite-*"):
        extra.unlink()
    if damage == "empty":
        (tmp_path / "memory.sqlite").write_bytes(b"")
    else:
        (tmp_path / "memory.sqlite").unlink()
    with pytest.raises(CorruptIndexError, match=r"memory\.sqlite"):
        Memory(tmp_path, embedder=HashingEmbedder(32))
    # refused again, not StoreLockedError: the failed open released the store's lock,
    # and it wrote nothing over the evidence
    with pytest.raises(CorruptIndexError):
        Memory(tmp_path, embedder=HashingEmbedder(32))
    assert LocalVectorStore(32, path=tmp_path / "vectors").count() == 1
