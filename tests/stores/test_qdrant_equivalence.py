import pytest

pytest.importorskip("qdrant_client")

from ragmem.stores.qdrant import QdrantVectorStore
from tests.stores.adapter_equivalence import check_equivalence


@pytest.mark.parametrize("seed", [0, 1])
def test_random_filters_agree_with_the_built_in_store(seed):
    store = QdrantVectorStore(collection="eq", dimensions=8, location=":memory:")
    check_equivalence(store, seed=seed)
