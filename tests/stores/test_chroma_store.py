"""Chroma-specific behaviour beyond the contract: no model download, config checks, restart."""

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("chromadb")

import chromadb
from chromadb.config import Settings

from ragmem.errors import ConfigurationError
from ragmem.registry import get_store
from ragmem.stores.chroma import ChromaVectorStore
from ragmem.testing.stores import unit_vectors

ROOT = Path(__file__).resolve().parents[2]


def name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def test_default_embedding_function_is_never_used(monkeypatch):
    from chromadb.api.types import DefaultEmbeddingFunction
    from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

    def refuse(*args, **kwargs):
        raise AssertionError("chromadb's default embedding function was used")

    monkeypatch.setattr(DefaultEmbeddingFunction, "__call__", refuse)
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "__init__", refuse)
    store = ChromaVectorStore(collection=name(), dimensions=8)
    store.upsert(["a", "b"], unit_vectors(2), texts=["some text", "more text"])
    assert store.search(unit_vectors(2)[1], k=1)[0][0].text == "more text"
    assert store.get(["a"])[0].text == "some text"
    store.close()


def test_clients_built_by_the_store_have_telemetry_off(tmp_path):
    for store in (
        ChromaVectorStore(collection=name(), dimensions=8),
        ChromaVectorStore(collection=name(), dimensions=8, path=tmp_path),
    ):
        assert store._client.get_settings().anonymized_telemetry is False
        store.close()


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_scores_equal_the_built_in_definitions(metric):
    from ragmem import LocalVectorStore

    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((30, 8)).astype(np.float32)
    ids = [str(i) for i in range(30)]
    query = rng.standard_normal(8).astype(np.float32)
    local = LocalVectorStore(dimensions=8, metric=metric)
    store = ChromaVectorStore(collection=name(), dimensions=8, metric=metric)
    for s in (local, store):
        s.upsert(ids, vectors)
    want = local.search(query, k=10)[0]
    got = store.search(query, k=10)[0]
    assert [h.id for h in got] == [h.id for h in want]
    np.testing.assert_allclose(
        [h.score for h in got], [h.score for h in want], rtol=1e-4, atol=1e-3
    )
    store.close()


def test_replacing_an_item_drops_its_old_text_and_fields():
    store = ChromaVectorStore(collection=name(), dimensions=8)
    store.upsert(["a"], unit_vectors(1), texts=["old"], metadata=[{"n": [1, 2.5], "s": "x"}])
    store.upsert(["a"], unit_vectors(1), texts=[None], metadata=[{"t": True}])
    (record,) = store.get(["a"])
    assert (record.text, record.metadata) == (None, {"t": True})
    assert store.count({"n": {"$gt": 0}}) == 0
    assert store.count({"s": {"$exists": True}}) == 0
    assert store.count({"t": True}) == 1
    store.close()


def test_existing_collection_is_validated(tmp_path):
    client = chromadb.PersistentClient(
        path=str(tmp_path), settings=Settings(anonymized_telemetry=False)
    )
    ChromaVectorStore(collection="c-1", dimensions=8, client=client)
    ChromaVectorStore(collection="c-1", dimensions=8, client=client)  # same config: fine
    with pytest.raises(ConfigurationError, match="dimensions=8"):
        ChromaVectorStore(collection="c-1", dimensions=16, client=client)
    with pytest.raises(ConfigurationError, match="metric='dot'"):
        ChromaVectorStore(collection="c-1", dimensions=8, metric="dot", client=client)
    # a collection made outside ragmem: the dimension is read from its data
    foreign = client.create_collection(
        "foreign", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
    )
    foreign.add(ids=["x"], embeddings=np.array([[1.0, 0.0, 0.0]], np.float32))
    with pytest.raises(ConfigurationError, match="dimensions=3"):
        ChromaVectorStore(collection="foreign", dimensions=8, client=client)
    client.close()  # type: ignore[attr-defined]  # present at run time, not in the stubs


def test_a_collection_in_an_earlier_ragmem_layout_is_refused_not_misread(tmp_path):
    client = chromadb.PersistentClient(
        path=str(tmp_path), settings=Settings(anonymized_telemetry=False)
    )
    # what the first Chroma layout of ragmem left: no layout stamp on the collection
    old = client.create_collection(
        "old",
        embedding_function=None,
        configuration={"hnsw": {"space": "cosine"}},
        metadata={"ragmem:dimensions": 2},
    )
    old.add(ids=["a"], embeddings=np.array([[1.0, 0.0]], np.float32), metadatas=[{"n": 2.0}])
    with pytest.raises(ConfigurationError, match="earlier layout"):
        ChromaVectorStore(collection="old", dimensions=2, client=client)
    # an empty one holds nothing to misread: it is stamped and used
    client.create_collection(
        "old-empty",
        embedding_function=None,
        configuration={"hnsw": {"space": "cosine"}},
        metadata={"ragmem:dimensions": 2},
    )
    store = ChromaVectorStore(collection="old-empty", dimensions=2, client=client)
    store.upsert(["a"], [[1.0, 0.0]], metadata=[{"n": 2}])
    assert store.get(["a"])[0].metadata == {"n": 2}
    ChromaVectorStore(collection="old-empty", dimensions=2, client=client)
    client.close()  # type: ignore[attr-defined]  # present at run time, not in the stubs


def test_bad_options():
    with pytest.raises(ConfigurationError, match="only one"):
        ChromaVectorStore(collection="c-1", dimensions=8, path="/tmp/x", host="localhost")
    with pytest.raises(ConfigurationError, match="port"):
        ChromaVectorStore(collection="c-1", dimensions=8, port=8000)
    with pytest.raises(ConfigurationError, match="collection"):
        ChromaVectorStore(collection="x", dimensions=8)  # Chroma wants 3+ characters
    with pytest.raises(ConfigurationError):
        ChromaVectorStore(collection="c-1", dimensions=8, metric="hamming")  # type: ignore[arg-type]


def test_registry_builds_the_store():
    store = get_store("chroma", collection=name(), dimensions=4)
    assert isinstance(store, ChromaVectorStore)
    store.close()


def test_data_survives_close_and_reopen_in_another_process(tmp_path):
    writer = textwrap.dedent(
        f"""
        from ragmem.stores.chroma import ChromaVectorStore
        from ragmem.testing.stores import unit_vectors
        store = ChromaVectorStore(
            collection="kept", dimensions=8, metric="dot", path={str(tmp_path)!r}
        )
        store.upsert([f"id-{{i}}" for i in range(30)], unit_vectors(30, seed=7),
                     texts=[f"text {{i}}" for i in range(30)],
                     metadata=[{{"i": i, "odd": i % 2 == 1}} for i in range(30)])
        store.delete(["id-0"])
        store.close()
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", writer], check=True, cwd=ROOT, env=env)
    store = ChromaVectorStore(collection="kept", dimensions=8, metric="dot", path=tmp_path)
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
        assert "chromadb" not in sys.modules
        sys.modules["chromadb"] = None  # as if the extra were not installed
        from ragmem.errors import MissingDependencyError
        try:
            import ragmem.stores.chroma
        except MissingDependencyError as exc:
            assert "ragmem[chroma]" in str(exc), exc
        else:
            raise AssertionError("no MissingDependencyError")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)


def test_metadata_types_survive_the_round_trip_exactly():
    metas: list[dict[str, Any]] = [
        {"i": 2, "f": 2.0, "b": True, "s": "2"},
        {"big": 2**60 + 1, "neg": -(2**70)},
        {"l": [1, 1.0, True, "1"], "e": []},
        {},
    ]
    store = ChromaVectorStore(collection=name(), dimensions=8)
    store.upsert(["a", "b", "c", "d"], unit_vectors(4), metadata=metas)
    for got, want in zip((r.metadata for r in store.get(["a", "b", "c", "d"])), metas):
        assert got == want
        assert [type(v) for v in got.values()] == [type(v) for v in want.values()]
        for g, w in zip(got.values(), want.values()):
            if isinstance(w, list):
                assert isinstance(g, list)
                assert [type(x) for x in g] == [type(x) for x in w]
    hits = store.search(unit_vectors(4)[0], k=1, where={"i": 2.0})[0]
    assert [type(v) for v in hits[0].metadata.values()] == [int, float, bool, str]
    # chromadb alone would match a stored int 2 with 2.75: the adapter must not
    assert store.count({"i": 2.75}) == 0
    assert store.count({"i": {"$gt": 1.5}}) == 1
    store.close()
