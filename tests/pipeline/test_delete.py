"""RAGPipeline.delete removes documents from the store, BM25 and the manifest, crash-safely."""

import pytest

from ragmem import Document, HashingEmbedder, InvalidInputError, RAGPipeline
from ragmem.ingest import Manifest
from tests.pipeline_helpers import all_ids

DOCS = [
    Document(
        id="a", text="Backups run nightly and are kept for thirty days.", metadata={"team": "ops"}
    ),
    Document(id="b", text="VPN access is requested in the IT portal.", metadata={"team": "it"}),
    Document(id="c", text="Printers are on the third floor.", metadata={"team": "it"}),
]


def make(path=None):
    return RAGPipeline(path, embedder=HashingEmbedder(dimensions=32))


def doc_ids(rag):
    return {h.metadata["doc_id"] for h in rag.keyword.retrieve("backups vpn printers", k=10)}


def test_delete_by_id_leaves_no_trace_in_store_bm25_or_manifest(tmp_path):
    rag = make(tmp_path)
    rag.ingest(DOCS)
    report = rag.delete(["a"])
    assert report.removed == ["a"]
    assert report.chunks_deleted == 1
    assert doc_ids(rag) == {"b", "c"}
    assert not any(i.startswith("a@") for i in all_ids(rag.store))
    assert "doc:a" not in rag.manifest.entries
    assert rag.search("backups nightly", k=3)[0].metadata["doc_id"] != "a"
    rag.close()
    with make(tmp_path) as again:  # persisted
        assert doc_ids(again) == {"b", "c"}
        assert again.store.count() == 2
        # re-ingesting the deleted document brings it back
        assert again.ingest(DOCS).added == ["a"]


def test_delete_by_filter_and_folder_files(tmp_path):
    rag = make()
    rag.ingest(DOCS)
    assert sorted(rag.delete(where={"team": "it"}).removed) == ["b", "c"]
    assert doc_ids(rag) == {"a"}
    folder = tmp_path / "docs"
    (folder / "guides").mkdir(parents=True)
    (folder / "guides" / "backup.md").write_text("# Backups\n\nRestore from the console.\n")
    (folder / "faq.txt").write_text("VPN access: ask IT.\n")
    rag.ingest_folder(folder)
    label = (folder / "guides" / "backup.md").as_posix()
    assert rag.delete(where={"source": {"$prefix": (folder / "guides").as_posix()}}).removed == [
        label
    ]
    assert not any(i.startswith(label) for i in all_ids(rag.store))
    assert rag.delete(label).removed == []  # already gone: ignored


def test_delete_needs_exactly_one_selector():
    rag = make()
    for kwargs in ({}, {"doc_ids": ["a"], "where": {"team": "it"}}):
        with pytest.raises(InvalidInputError, match="doc_ids"):
            rag.delete(**kwargs)
    with pytest.raises(InvalidInputError, match="doc_ids"):
        rag.delete([""])


def test_an_interrupted_delete_is_finished_on_the_next_open(tmp_path, monkeypatch):
    rag = make(tmp_path)
    rag.ingest(DOCS)

    def crash(ids):
        raise KeyboardInterrupt  # the process dies between the manifest and the store

    monkeypatch.setattr(rag.writer, "_delete", crash)
    with pytest.raises(KeyboardInterrupt):
        rag.delete(["a"])
    rag.close()
    assert Manifest(tmp_path / "manifest.json").deleting  # recorded as pending
    with make(tmp_path) as again:
        assert doc_ids(again) == {"b", "c"}
        assert again.store.count() == 2
        assert not Manifest(tmp_path / "manifest.json").deleting
