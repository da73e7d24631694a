import uuid

import pytest

pytest.importorskip("chromadb")

from ragmem.stores.chroma import ChromaVectorStore
from tests.stores.adapter_equivalence import check_equivalence


@pytest.mark.parametrize("seed", [0, 1])
def test_random_filters_agree_with_the_built_in_store(seed):
    store = ChromaVectorStore(collection=f"eq-{uuid.uuid4().hex[:8]}", dimensions=8)
    check_equivalence(store, seed=seed)
    store.close()
