"""Collections over HTTP: create, list, add documents and files, search, jobs, delete."""

from __future__ import annotations

import time

import pytest

from ragmem.pipeline import RAGPipeline
from ragmem.server.models import HitOut, SearchResult
from tests.server.conftest import DOCS


def test_probes(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"ready": True}


def test_create_is_idempotent_and_listed(client):
    first = client.post("/collections", json={"name": "docs"})
    again = client.post("/collections", json={"name": "docs"})
    assert (first.status_code, again.status_code) == (201, 200)
    listed = client.get("/collections").json()["collections"]
    assert [c["name"] for c in listed] == ["docs"]
    assert listed[0]["embedder"] == "hashing-64-0"


@pytest.mark.parametrize("name", ["../etc", "_memory", ".hidden", "a/b", "x" * 65])
def test_bad_collection_names_are_refused(client, name):
    reply = client.post("/collections", json={"name": name})
    assert reply.status_code in (400, 422)
    assert "error" in reply.json()
    assert client.get("/collections").json()["collections"] == []


def test_search_returns_spans_scores_and_explain(docs):
    reply = docs.post("/collections/docs/search", json={"query": "capital of Portugal", "k": 2})
    assert reply.status_code == 200
    hits = reply.json()["hits"]
    assert hits[0]["doc_id"] == "lisbon"
    assert hits[0]["text"] == DOCS[0]["text"][hits[0]["start"] : hits[0]["end"]]
    assert "retrievers" in hits[0]["explain"]
    assert hits[0]["score"] >= hits[1]["score"]


@pytest.mark.parametrize("retriever", ["hybrid", "dense", "bm25"])
@pytest.mark.parametrize("explain", [True, False])
def test_search_answers_in_the_documented_shape(docs, retriever, explain):
    body = {"query": "capital of Portugal", "k": 3, "retriever": retriever, "explain": explain}
    reply = docs.post("/collections/docs/search", json=body)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    result = SearchResult.model_validate_json(reply.content)  # the schema /openapi.json shows
    assert result.hits
    for raw in reply.json()["hits"]:
        assert set(raw) == set(HitOut.model_fields)
        assert isinstance(raw["start"], int)
        assert isinstance(raw["end"], int)
        assert (raw["explain"] is not None) == explain


def test_search_filter_min_score_and_retriever(docs):
    body = {"query": "capital of Portugal", "k": 3, "where": {"topic": "space"}}
    hits = docs.post("/collections/docs/search", json=body).json()["hits"]
    assert [h["doc_id"] for h in hits] == ["moon"]
    dense = docs.post(
        "/collections/docs/search",
        json={"query": "capital of Portugal", "k": 3, "retriever": "dense", "explain": False},
    ).json()["hits"]
    assert len(dense) == 3
    assert all(h["explain"] is None for h in dense)
    threshold = (dense[0]["score"] + dense[1]["score"]) / 2
    kept = docs.post(
        "/collections/docs/search",
        json={"query": "capital of Portugal", "k": 3, "retriever": "dense", "min_score": threshold},
    ).json()["hits"]
    assert [h["id"] for h in kept] == [dense[0]["id"]]


def test_search_unknown_collection_and_bad_filter(docs):
    missing = docs.post("/collections/nope/search", json={"query": "x"})
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    bad = docs.post("/collections/docs/search", json={"query": "x", "where": {"$nope": 1}})
    assert bad.status_code == 400
    assert "filter" in bad.json()["error"]["message"]


def test_documents_replace_by_id(docs):
    changed = {"id": "lisbon", "text": "Porto is a city in Portugal."}
    report = docs.post("/collections/docs/documents", json={"documents": [changed]}).json()
    assert report["updated"] == ["lisbon"]
    hits = docs.post("/collections/docs/search", json={"query": "Lisbon Porto", "k": 3}).json()
    texts = {h["text"] for h in hits["hits"]}
    assert "Porto is a city in Portugal." in texts
    assert DOCS[0]["text"] not in texts


def test_upload_files_uses_the_folder_loaders(docs):
    files = [
        ("files", ("notes.md", b"# Notes\n\nJupiter has many moons.", "text/markdown")),
        ("files", ("page.html", b"<html><body><p>Mars is red.</p></body></html>", "text/html")),
    ]
    report = docs.post("/collections/docs/files", files=files).json()
    assert sorted(report["added"]) == ["notes.md", "page.html"]
    hits = docs.post("/collections/docs/search", json={"query": "Mars red", "k": 1}).json()
    assert hits["hits"][0]["source"] == "page.html"
    assert "<p>" not in hits["hits"][0]["text"]
    bad = docs.post("/collections/docs/files", files=[("files", ("x.exe", b"MZ", "x"))])
    assert bad.status_code == 400


def test_background_job_reports_progress_and_result(docs):
    documents = [
        {"id": f"d{i}", "text": f"document number {i} about topic {i % 7}"} for i in range(150)
    ]
    reply = docs.post(
        "/collections/docs/documents", json={"documents": documents, "background": True}
    )
    assert reply.status_code == 202
    job_id = reply.json()["id"]
    for _ in range(1000):
        job = docs.get(f"/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.01)
    assert job["status"] == "done", job
    assert (job["done"], job["total"]) == (150, 150)
    assert len(job["result"]["added"]) == 150
    assert docs.get("/collections/docs").json()["documents"] == 153
    assert docs.get("/jobs/unknown").status_code == 404


def test_delete_collection(docs, tmp_path):
    assert docs.delete("/collections/docs").status_code == 204
    assert docs.get("/collections").json()["collections"] == []
    assert not (tmp_path / "docs").exists()
    assert docs.post("/collections/docs/search", json={"query": "x"}).status_code == 404


def test_serves_a_folder_built_by_the_cli_way(tmp_path):
    from fastapi.testclient import TestClient

    from ragmem import Document
    from ragmem.server.app import create_app
    from tests.server.conftest import settings

    with RAGPipeline(tmp_path / "kb", embedder="hashing") as rag:
        rag.ingest([Document(id="x", text="The Nile flows north.")])
    with TestClient(create_app(settings(tmp_path))) as client:
        assert [c["name"] for c in client.get("/collections").json()["collections"]] == ["kb"]
        hits = client.post("/collections/kb/search", json={"query": "Nile"}).json()["hits"]
        assert hits[0]["doc_id"] == "x"


def test_delete_documents_by_id_and_filter(docs):
    reply = docs.post("/collections/docs/documents/delete", json={"ids": ["lisbon"]})
    assert reply.status_code == 200
    assert reply.json()["deleted"] == 1
    reply = docs.post("/collections/docs/documents/delete", json={"where": {"topic": "space"}})
    assert reply.status_code == 200
    assert reply.json()["deleted"] == 1
    hits = docs.post("/collections/docs/search", json={"query": "Lisbon moon", "k": 5}).json()
    assert {h["doc_id"] for h in hits["hits"]} == {"offline"}
