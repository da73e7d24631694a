"""Qdrant-specific behaviour beyond the contract: ids, payload layout, config checks, restart."""

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from qdrant_client import AsyncQdrantClient, QdrantClient, models

from ragmem.errors import ConfigurationError, InvalidFilterError, StoreLockedError
from ragmem.registry import get_store
from ragmem.stores.qdrant import QdrantVectorStore, point_id
from ragmem.testing.stores import unit_vectors

ROOT = Path(__file__).resolve().parents[2]


def test_point_ids_are_deterministic_uuids_and_payload_keeps_the_id():
    client = QdrantClient(":memory:")
    store = QdrantVectorStore(collection="c", dimensions=8, client=client)
    store.upsert(["doc/1"], unit_vectors(1), texts=["hello"], metadata=[{"id": "user", "text": 3}])
    assert point_id("doc/1") == point_id("doc/1") != point_id("doc/2")
    (point,) = client.retrieve("c", [point_id("doc/1")], with_payload=True)
    # user metadata keys named like the adapter's fields do not collide with them
    assert point.payload == {
        "id": "doc/1",
        "text": "hello",
        "metadata": {"id": "user", "text": 3},
    }
    assert store.count({"text": 3}) == 1
    assert store.count({"id": "doc/1"}) == 0


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_scores_equal_the_built_in_definitions(metric):
    from ragmem import LocalVectorStore

    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((30, 8)).astype(np.float32)
    ids = [str(i) for i in range(30)]
    query = rng.standard_normal(8).astype(np.float32)
    local = LocalVectorStore(dimensions=8, metric=metric)
    store = QdrantVectorStore(collection="m", dimensions=8, metric=metric)
    for s in (local, store):
        s.upsert(ids, vectors)
    want = local.search(query, k=10)[0]
    got = store.search(query, k=10)[0]
    assert [h.id for h in got] == [h.id for h in want]
    np.testing.assert_allclose(
        [h.score for h in got], [h.score for h in want], rtol=1e-4, atol=1e-3
    )


def test_existing_collection_is_validated():
    client = QdrantClient(":memory:")
    QdrantVectorStore(collection="c", dimensions=8, client=client)
    QdrantVectorStore(collection="c", dimensions=8, client=client)  # same config: fine
    with pytest.raises(ConfigurationError, match="size=8"):
        QdrantVectorStore(collection="c", dimensions=16, client=client)
    with pytest.raises(ConfigurationError, match="metric='dot'"):
        QdrantVectorStore(collection="c", dimensions=8, metric="dot", client=client)
    client.create_collection(
        "named", vectors_config={"v": models.VectorParams(size=8, distance=models.Distance.COSINE)}
    )
    with pytest.raises(ConfigurationError, match="named vectors"):
        QdrantVectorStore(collection="named", dimensions=8, client=client)


def test_bad_options():
    with pytest.raises(ConfigurationError, match="only one"):
        QdrantVectorStore(collection="c", dimensions=8, location=":memory:", url="http://x")
    with pytest.raises(ConfigurationError):
        QdrantVectorStore(collection="c", dimensions=0)
    with pytest.raises(ConfigurationError):
        QdrantVectorStore(collection="c", dimensions=8, metric="hamming")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="only with url"):
        QdrantVectorStore(collection="c", dimensions=8, timeout=3)
    with pytest.raises(ConfigurationError, match="async_client"):
        QdrantVectorStore(
            collection="c",
            dimensions=8,
            client=AsyncQdrantClient(":memory:"),  # type: ignore[arg-type]
        )


def test_field_names_with_quotes_cannot_be_filtered_and_say_why():
    store = QdrantVectorStore(collection="c", dimensions=8)
    store.upsert(["a"], unit_vectors(1), metadata=[{'say "hi"': 1, "a.b[0]": 2}])
    assert store.count({"a.b[0]": 2}) == 1  # dots and brackets are quoted, not paths
    with pytest.raises(InvalidFilterError, match="Qdrant"):
        store.count({'say "hi"': 1})
    # presence needs no path: such keys are listed in the payload
    assert store.count({'say "hi"': {"$exists": True}}) == 1
    assert store.count({'say "hi"': {"$exists": False}}) == 0
    assert store.count({'say "ho"': {"$exists": False}}) == 1


def test_payload_lists_only_the_keys_is_empty_cannot_see():
    client = QdrantClient(":memory:")
    store = QdrantVectorStore(collection="c", dimensions=8, client=client)
    metas: list[dict[str, Any]] = [{"e": [], "s": "x"}, {"e": [1]}, {}, {'q"': 0}]
    store.upsert(["a", "b", "c", "d"], unit_vectors(4), metadata=metas)
    points = client.retrieve("c", [point_id(i) for i in "abcd"], with_payload=True)
    keys = {p.payload["id"]: p.payload.get("metadata_keys") for p in points if p.payload}
    assert keys == {"a": ["e"], "b": None, "c": None, "d": ['q"']}
    assert store.count({"e": {"$exists": True}}) == 2
    assert store.count({"e": {"$exists": False}}) == 2
    assert store.count({"s": {"$exists": True}}) == 1
    assert [h.metadata for h in store.search(unit_vectors(4)[0], k=1)[0]] == [metas[0]]


def test_registry_builds_the_store():
    store = get_store("qdrant", collection="c", dimensions=4)
    assert isinstance(store, QdrantVectorStore)


def test_second_open_of_a_path_is_store_locked(tmp_path):
    store = QdrantVectorStore(collection="c", dimensions=8, path=tmp_path)
    with pytest.raises(StoreLockedError):
        QdrantVectorStore(collection="c", dimensions=8, path=tmp_path)
    store.close()


def test_async_twins_on_async_qdrant_client():
    async def scenario():
        sync_client = QdrantClient(":memory:")
        async_client = AsyncQdrantClient(":memory:")
        store = QdrantVectorStore(
            collection="c", dimensions=8, client=sync_client, async_client=async_client
        )
        # local mode cannot share one store between two clients: create it on the async side
        await async_client.create_collection(
            "c", vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE)
        )
        vectors = unit_vectors(20)
        ids = [str(i) for i in range(20)]
        await store.upsert_async(ids, vectors, metadata=[{"i": i} for i in range(20)])
        assert store.count() == 0  # the writes went through the async client
        assert await store.count_async({"i": {"$lt": 5}}) == 5
        hits = await store.search_async(vectors[3], k=2, where={"i": {"$gte": 3}})
        assert hits[0][0].id == "3"
        assert (await store.get_async(["4"]))[0].metadata == {"i": 4}
        assert await store.delete_async(["4", "5", "nope"]) == 2
        assert await store.delete_async(where={"i": {"$gte": 10}}) == 10
        assert await store.count_async() == 8
        assert await store.search_async(vectors[0], k=3, where={"$or": []}) == [[]]
        batch = await store.search_async(vectors[[1, 2]], k=1)
        assert [hits[0].id for hits in batch] == ["1", "2"]
        await async_client.close()

    asyncio.run(scenario())


def test_data_survives_close_and_reopen_in_another_process(tmp_path):
    writer = textwrap.dedent(
        f"""
        import numpy as np
        from ragmem.stores.qdrant import QdrantVectorStore
        from ragmem.testing.stores import unit_vectors
        store = QdrantVectorStore(
            collection="kept", dimensions=8, metric="l2", path={str(tmp_path)!r}
        )
        store.upsert([f"id-{{i}}" for i in range(30)], unit_vectors(30, seed=7),
                     texts=[f"text {{i}}" for i in range(30)],
                     metadata=[{{"i": i, "odd": i % 2 == 1}} for i in range(30)])
        store.delete(["id-0"])
        store.close()
        """
    )
    subprocess.run(
        [sys.executable, "-c", writer],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    store = QdrantVectorStore(collection="kept", dimensions=8, metric="l2", path=tmp_path)
    assert store.count() == 29
    assert store.count({"odd": True}) == 15
    (record,) = store.get(["id-5"])
    assert (record.text, record.metadata) == ("text 5", {"i": 5, "odd": True})
    np.testing.assert_allclose(record.vector, unit_vectors(30, seed=7)[5], atol=1e-6)
    assert store.search(unit_vectors(30, seed=7)[9], k=1)[0][0].id == "id-9"
    store.close()


def test_missing_sdk_names_the_extra_and_ragmem_imports_without_it():
    code = textwrap.dedent(
        """
        import sys
        import ragmem, ragmem.registry, ragmem.stores
        assert "qdrant_client" not in sys.modules
        sys.modules["qdrant_client"] = None  # as if the extra were not installed
        from ragmem.errors import MissingDependencyError
        try:
            import ragmem.stores.qdrant
        except MissingDependencyError as exc:
            assert "ragmem[qdrant]" in str(exc), exc
        else:
            raise AssertionError("no MissingDependencyError")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
def test_unreachable_server_is_backend_unavailable():
    from ragmem.errors import BackendUnavailableError
    from tests.stores.chroma_server import free_port

    with pytest.raises(BackendUnavailableError):
        QdrantVectorStore(
            collection="c", dimensions=8, url=f"http://127.0.0.1:{free_port()}", timeout=2
        )


def test_async_with_closes_the_store():
    async def scenario():
        async with QdrantVectorStore(collection="c", dimensions=8, location=":memory:") as store:
            await store.upsert_async(["a"], unit_vectors(1))
            assert await store.count_async() == 1
        return store

    store = asyncio.run(scenario())
    with pytest.raises(RuntimeError, match="closed"):
        store.count()
