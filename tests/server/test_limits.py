"""Backpressure (503 + Retry-After), body limits (413), timeouts (504) and /metrics."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from ragmem.server.app import create_app
from tests.server.conftest import DOCS, live_server, settings


def _blocking(app, release: threading.Event) -> None:
    """Make GET /collections wait until ``release`` is set."""
    state = app.state.service.state
    names = state.names

    def slow_names():
        release.wait(60)
        return names()

    state.names = slow_names


def _in_flight(app) -> float:
    return app.state.service.metrics.registry.get_sample_value("ragmem_http_in_flight")


def test_past_the_queue_requests_get_503_with_retry_after(tmp_path):
    # capacity: one write worker, one search worker and one queued request
    app = create_app(settings(tmp_path, workers=1, search_workers=1, queue=1))
    release = threading.Event()
    _blocking(app, release)
    with live_server(app) as url:
        replies: list[int] = []
        callers = [
            threading.Thread(
                target=lambda: replies.append(
                    httpx.get(f"{url}/collections", timeout=60).status_code
                )
            )
            for _ in range(3)
        ]
        for caller in callers:
            caller.start()
        for _ in range(3000):  # until all three are admitted (one working, two queued)
            if _in_flight(app) == 3:
                break
            time.sleep(0.01)
        assert _in_flight(app) == 3
        refused = httpx.get(f"{url}/collections", timeout=60)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["type"] == "server_error"
        assert httpx.get(f"{url}/healthz", timeout=60).status_code == 200  # probes are never queued
        release.set()
        for caller in callers:
            caller.join(30)
        assert replies == [200, 200, 200]
        metrics = httpx.get(f"{url}/metrics", timeout=60).text
        assert "ragmem_http_rejected_total 1.0" in metrics


def _seeded(url: str) -> None:
    with httpx.Client(base_url=url, timeout=60) as http:
        assert http.post("/collections", json={"name": "docs"}).status_code == 201
        reply = http.post("/collections/docs/documents", json={"documents": DOCS})
        assert reply.status_code == 200


def _search(url: str) -> int:
    reply = httpx.post(f"{url}/collections/docs/search", json={"query": "moon"}, timeout=60)
    return reply.status_code


def test_a_long_write_does_not_hold_up_searches(tmp_path):
    # the only write worker is busy; searches have threads of their own
    app = create_app(settings(tmp_path, workers=1, search_workers=1, queue=8))
    registry = app.state.service.metrics.registry
    with live_server(app) as url:
        _seeded(url)
        release = threading.Event()
        _blocking(app, release)
        held = threading.Thread(target=lambda: httpx.get(f"{url}/collections", timeout=60))
        held.start()
        try:
            for _ in range(3000):  # until the write worker holds it
                if _in_flight(app) == 1:
                    break
                time.sleep(0.01)
            assert _in_flight(app) == 1
            assert _search(url) == 200
            assert registry.get_sample_value("ragmem_queue_depth") == 0
        finally:
            release.set()
            held.join(30)


def test_searches_beyond_the_search_workers_wait_their_turn(tmp_path):
    app = create_app(settings(tmp_path, workers=4, search_workers=1, queue=8))
    registry = app.state.service.metrics.registry
    with live_server(app) as url:
        _seeded(url)
        collection = app.state.service.state.get("docs")
        search = collection.pipeline.search
        release = threading.Event()
        running = []

        def slow_search(*args, **kwargs):
            running.append(1)
            release.wait(60)
            return search(*args, **kwargs)

        collection.pipeline.search = slow_search
        replies: list[int] = []
        callers = [threading.Thread(target=lambda: replies.append(_search(url))) for _ in range(3)]
        for caller in callers:
            caller.start()
        try:
            for _ in range(3000):  # one searching, two waiting for the only search thread
                if registry.get_sample_value("ragmem_queue_depth") == 2:
                    break
                time.sleep(0.01)
            assert registry.get_sample_value("ragmem_queue_depth") == 2
            assert len(running) == 1
        finally:
            release.set()
            for caller in callers:
                caller.join(30)
        assert replies == [200, 200, 200]
        assert len(running) == 3


def test_queue_depth_counts_requests_waiting_for_a_worker(tmp_path):
    app = create_app(settings(tmp_path, workers=1, queue=4))
    release = threading.Event()
    _blocking(app, release)
    registry = app.state.service.metrics.registry
    with live_server(app) as url:
        callers = [
            threading.Thread(target=lambda: httpx.get(f"{url}/collections", timeout=60))
            for _ in range(3)
        ]
        for caller in callers:
            caller.start()
        for _ in range(3000):  # one working, two waiting for the only worker
            if registry.get_sample_value("ragmem_queue_depth") == 2:
                break
            time.sleep(0.01)
        assert registry.get_sample_value("ragmem_queue_depth") == 2
        assert "ragmem_queue_depth 2.0" in httpx.get(f"{url}/metrics", timeout=60).text
        release.set()
        for caller in callers:
            caller.join(30)
        assert registry.get_sample_value("ragmem_queue_depth") == 0


def test_bodies_over_the_limit_get_413(tmp_path):
    with TestClient(create_app(settings(tmp_path, max_body_bytes=2000))) as client:
        client.post("/collections", json={"name": "docs"})
        big = {"documents": [{"id": "a", "text": "word " * 1000}]}
        reply = client.post("/collections/docs/documents", json=big)
        assert reply.status_code == 413
        assert "2000 bytes" in reply.json()["error"]["message"]

        def chunks():  # no content-length: counted while it is read
            for _ in range(10):
                yield b"x" * 500

        streamed = client.post(
            "/collections/docs/documents",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert streamed.status_code == 413
        assert client.get("/collections/docs").json()["documents"] == 0


def test_slow_requests_get_504(tmp_path):
    app = create_app(settings(tmp_path, timeout=0.2))
    release = threading.Event()
    _blocking(app, release)
    try:
        with TestClient(app) as client:
            reply = client.get("/collections")
            assert reply.status_code == 504
            assert reply.json()["error"]["code"] == "timeout"
    finally:
        release.set()


def test_metrics_count_requests_latency_and_errors(docs):
    docs.post("/collections/docs/search", json={"query": "moon"})
    docs.post("/collections/nope/search", json={"query": "moon"})
    text = docs.get("/metrics").text
    assert (
        'ragmem_http_requests_total{method="POST",route="/collections/{name}/search",status="200"}'
        in text
    )
    assert 'status="404"' in text
    assert 'ragmem_http_request_seconds_bucket{le="0.5",route="/collections/{name}/search"}' in text
    assert "ragmem_queue_depth" in text


@pytest.fixture
def docs(tmp_path):
    from tests.server.conftest import DOCS

    with TestClient(create_app(settings(tmp_path))) as client:
        client.post("/collections", json={"name": "docs"})
        client.post("/collections/docs/documents", json={"documents": DOCS})
        yield client
