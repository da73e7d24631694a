"""The store contract and a restart test against a real Chroma server (``chroma run``)."""

import uuid
from typing import Any

import numpy as np
import pytest

pytest.importorskip("chromadb")

from ragmem.stores.chroma import ChromaVectorStore
from ragmem.testing import VectorStoreContract
from ragmem.testing.stores import unit_vectors
from tests.stores.chroma_server import ChromaServer, chroma_cli

pytestmark = pytest.mark.skipif(chroma_cli() is None, reason="the chroma CLI is not installed")


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chroma_http_client(chroma_server):
    import chromadb
    from chromadb.config import Settings

    client = chromadb.HttpClient(
        host=chroma_server.host,
        port=chroma_server.port,
        settings=Settings(anonymized_telemetry=False),
    )
    yield client
    client.close()  # type: ignore[attr-defined]  # present at run time, not in the stubs


class TestChromaServer(VectorStoreContract):
    @pytest.fixture
    def store(self, chroma_http_client):
        # one server and client for the session, a new collection per test
        name = f"t-{uuid.uuid4().hex[:12]}"
        yield ChromaVectorStore(collection=name, dimensions=8, client=chroma_http_client)
        chroma_http_client.delete_collection(name)


class TestChromaServerByHost:
    def test_host_and_port_reach_the_server(self, chroma_server):
        store = ChromaVectorStore(
            collection="by-host", dimensions=8, host=chroma_server.host, port=chroma_server.port
        )
        store.upsert(["a", "b"], unit_vectors(2), texts=["x", None], metadata=[{"k": 1}, {}])
        assert store.count({"k": {"$gte": 1}}) == 1
        assert [r.text for r in store.get(["b", "a"])] == [None, "x"]
        store.close()


def test_data_survives_server_restart(tmp_path):
    server = ChromaServer(tmp_path / "data")
    server.start()
    try:
        vectors = unit_vectors(50, seed=7)
        ids = [f"id-{i}" for i in range(50)]
        metas: list[dict[str, Any]] = [
            {"i": i, "tags": ["even" if i % 2 == 0 else "odd"]} for i in range(50)
        ]
        store = ChromaVectorStore(
            collection="kept", dimensions=8, host=server.host, port=server.port
        )
        store.upsert(ids, vectors, texts=[f"text {i}" for i in range(50)], metadata=metas)
        store.delete(["id-3"])
        store.close()
        server.stop()
        server.start()
        store = ChromaVectorStore(
            collection="kept", dimensions=8, host=server.host, port=server.port
        )
        assert store.count() == 49
        assert store.count({"tags": "even"}) == 25
        (record,) = store.get(["id-10"])
        assert record.text == "text 10"
        assert record.metadata == metas[10]
        np.testing.assert_allclose(record.vector, vectors[10], atol=1e-5)
        assert store.search(vectors[20], k=1)[0][0].id == "id-20"
        store.close()
    finally:
        server.stop()


def test_unreachable_server_is_backend_unavailable():
    from ragmem.errors import BackendUnavailableError
    from tests.stores.chroma_server import free_port

    with pytest.raises(BackendUnavailableError):
        ChromaVectorStore(collection="nobody", dimensions=8, host="127.0.0.1", port=free_port())


def test_random_filters_agree_with_the_built_in_store_on_the_server(chroma_http_client):
    from tests.stores.adapter_equivalence import check_equivalence

    name = f"eq-{uuid.uuid4().hex[:8]}"
    check_equivalence(ChromaVectorStore(collection=name, dimensions=8, client=chroma_http_client))
    chroma_http_client.delete_collection(name)
