"""The fault matrix: every remote embedder against its fake server's injected faults.

Each fault ends in success after retries, or in the documented typed error within the
bounded number of attempts; nothing partial is ever returned.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

pytest.importorskip("openai")
pytest.importorskip("cohere")
pytest.importorskip("tiktoken")

from ragmem.embedders.cohere import CohereEmbedder
from ragmem.embedders.openai import OpenAIEmbedder
from ragmem.errors import (
    BackendError,
    BackendHTTPError,
    BackendResponseError,
    BackendUnavailableError,
    RateLimitError,
)
from ragmem.remote import RetryPolicy
from tests.remote import fake_cohere, fake_openai
from tests.remote.conftest import FAST_RETRY
from tests.remote.fakeserver import Fault, closed_port_url

if TYPE_CHECKING:
    from collections.abc import Callable

    from ragmem.embedders.base import Embedder
    from tests.remote.fakeserver import FakeServer

TEXTS = ["first text", "second text", "third text"]


@dataclass
class Backend:
    server: FakeServer
    make: Callable[..., Embedder]
    drop_vector: Callable[[Any], Any]
    widen: Callable[[Any], Any]


def _openai_drop(body: Any) -> Any:
    body["data"] = body["data"][:-1]
    return body


def _openai_widen(body: Any) -> Any:
    for item in body["data"]:
        item["embedding"] = [0.5] * 9
    return body


def _cohere_drop(body: Any) -> Any:
    body["embeddings"]["float"] = body["embeddings"]["float"][:-1]
    return body


def _cohere_widen(body: Any) -> Any:
    body["embeddings"]["float"] = [[0.5] * 9 for _ in body["embeddings"]["float"]]
    return body


@pytest.fixture(params=["openai", "cohere"])
def backend(request, openai_server, cohere_server) -> Backend:
    if request.param == "openai":

        def make_openai(url: str | None = None, **options: Any) -> Embedder:
            options.setdefault("retry", FAST_RETRY)
            return OpenAIEmbedder(
                "text-embedding-3-small",
                dimensions=32,
                base_url=(url or openai_server.url) + "/v1",
                api_key=fake_openai.KEY,
                **options,
            )

        return Backend(openai_server, make_openai, _openai_drop, _openai_widen)

    def make_cohere(url: str | None = None, **options: Any) -> Embedder:
        options.setdefault("retry", FAST_RETRY)
        return CohereEmbedder(
            "embed-english-light-v3.0",
            base_url=url or cohere_server.url,
            api_key=fake_cohere.KEY,
            **options,
        )

    return Backend(cohere_server, make_cohere, _cohere_drop, _cohere_widen)


def expected(backend: Backend) -> np.ndarray:
    clean = backend.make().embed(TEXTS)
    backend.server.reset()
    return clean


@pytest.mark.parametrize(
    "fault",
    [
        Fault.http(429, headers={"retry-after": "0.01"}),
        Fault.http(429),
        Fault.http(500),
        Fault.http(502),
        Fault.http(503),
        Fault.drop(),
    ],
    ids=["429-retry-after", "429", "500", "502", "503", "dropped-connection"],
)
def test_transient_faults_are_retried_to_success(backend, fault):
    clean = expected(backend)
    backend.server.faults.extend([fault, fault])
    got = backend.make().embed(TEXTS)
    np.testing.assert_allclose(got, clean, atol=1e-6)
    assert len(backend.server.requests) == 3


def test_read_timeout_is_retried(backend):
    clean = expected(backend)
    backend.server.faults.append(Fault.stall(1.0))
    got = backend.make(timeout=0.2).embed(TEXTS)
    np.testing.assert_allclose(got, clean, atol=1e-6)
    assert len(backend.server.requests) == 2


def test_retries_are_bounded_by_attempts(backend):
    backend.server.faults.extend([Fault.http(503)] * 10)
    with pytest.raises(BackendHTTPError) as info:
        backend.make().embed(TEXTS)
    assert info.value.status_code == 503
    assert len(backend.server.requests) == FAST_RETRY.max_attempts
    assert isinstance(info.value.__cause__, Exception)  # the vendor's exception, chained


def test_retries_are_bounded_by_total_time(backend):
    # Retry-After past the deadline: give up at once instead of sleeping past it.
    policy = RetryPolicy(max_attempts=10, initial_delay=0.001, max_elapsed=0.5)
    backend.server.faults.extend([Fault.http(429, headers={"retry-after": "5"})] * 3)
    with pytest.raises(RateLimitError) as info:
        backend.make(retry=policy).embed(TEXTS)
    assert info.value.retry_after == pytest.approx(5.0)
    assert len(backend.server.requests) == 1


def test_connection_refused_is_unavailable(backend):
    with pytest.raises(BackendUnavailableError):
        backend.make(url=closed_port_url()).embed(TEXTS)


def test_persistent_timeouts_end_unavailable(backend):
    backend.server.faults.extend([Fault.stall(0.5)] * FAST_RETRY.max_attempts)
    with pytest.raises(BackendUnavailableError):
        backend.make(timeout=0.1).embed(TEXTS)
    assert len(backend.server.requests) == FAST_RETRY.max_attempts


def test_client_errors_are_not_retried(backend):
    backend.server.faults.append(Fault.http(400))
    with pytest.raises(BackendHTTPError) as info:
        backend.make().embed(TEXTS)
    assert info.value.status_code == 400
    assert not isinstance(info.value, RateLimitError)
    assert len(backend.server.requests) == 1


@pytest.mark.parametrize("kind", ["malformed", "drop_vector", "widen"])
def test_bad_replies_are_errors_never_partial(backend, kind):
    fault = {
        "malformed": Fault.malformed(),
        "drop_vector": Fault.change(backend.drop_vector),
        "widen": Fault.change(backend.widen),
    }[kind]
    backend.server.faults.append(fault)
    with pytest.raises(BackendResponseError):
        backend.make().embed(TEXTS)
    assert len(backend.server.requests) == 1


def test_async_path_retries_too(backend):
    clean = expected(backend)
    backend.server.faults.extend([Fault.http(500), Fault.http(429)])
    got = asyncio.run(backend.make().embed_async(TEXTS))
    np.testing.assert_allclose(got, clean, atol=1e-6)
    assert len(backend.server.requests) == 3


def test_async_errors_are_typed(backend):
    backend.server.faults.append(Fault.change(backend.drop_vector))
    with pytest.raises(BackendResponseError):
        asyncio.run(backend.make().embed_async(TEXTS))


def test_concurrency_and_rate_limits_hold_for_200_async_calls(backend):
    backend.server.delay = 0.01  # so overlapping requests are visible to the server
    rpm = 6000.0  # 100 requests per second, bursts of at most one second's worth
    embedder = backend.make(max_concurrency=4, requests_per_minute=rpm)

    async def run() -> list[np.ndarray]:
        calls = (embedder.embed_async([f"text {i}"]) for i in range(200))
        return list(await asyncio.gather(*calls))

    results = asyncio.run(run())
    assert len(results) == 200
    assert all(r.shape == (1, embedder.dimensions) for r in results)
    assert len(backend.server.requests) == 200
    assert 1 < backend.server.max_in_flight <= 4
    # No window of the server's clock saw more than the bucket allows (+ slack for
    # requests granted earlier that arrived later).
    arrivals = sorted(r.arrived for r in backend.server.requests)
    rate, burst = rpm / 60.0, rpm / 60.0
    for i, start in enumerate(arrivals):
        for j in range(i, len(arrivals)):
            assert j - i + 1 <= burst + rate * (arrivals[j] - start) + 4 + rate * 0.05


def test_one_async_call_sends_its_batches_concurrently_within_the_limit(backend):
    backend.server.delay = 0.02
    embedder = backend.make(max_concurrency=3)
    embedder.batch_size = 2
    texts = [f"text {i}" for i in range(20)]  # ten batches
    got = asyncio.run(embedder.embed_async(texts))
    assert backend.server.max_in_flight > 1
    assert len(backend.server.requests) == 10
    np.testing.assert_allclose(got, embedder.embed(texts), atol=1e-6)
    assert backend.server.max_in_flight <= 3


def test_a_failing_batch_fails_the_async_call_and_stops_the_others(backend):
    backend.server.faults.append(Fault.http(400))
    embedder = backend.make(max_concurrency=1)
    embedder.batch_size = 2
    with pytest.raises(BackendError):
        asyncio.run(embedder.embed_async([f"text {i}" for i in range(20)]))
    assert len(backend.server.requests) < 10


def test_retries_are_logged_without_secrets(backend, caplog):
    caplog.set_level(logging.DEBUG)
    backend.server.faults.extend([Fault.http(429), Fault.http(401)])
    with pytest.raises(BackendHTTPError) as info:
        backend.make().embed(TEXTS)
    assert "retry 1/" in caplog.text
    for key in (fake_openai.KEY, fake_cohere.KEY):
        assert key not in caplog.text
        assert key not in str(info.value)
        assert key not in repr(vars(backend.make()))


def test_sdk_retries_are_off_even_in_injected_clients(openai_server, cohere_server):
    """Only ragmem's policy retries: a client built with SDK retries does not add its own."""
    import cohere
    import openai

    client = openai.OpenAI(
        api_key=fake_openai.KEY, base_url=openai_server.url + "/v1", max_retries=5
    )
    embedder = OpenAIEmbedder(
        "text-embedding-3-small", dimensions=32, client=client, retry=FAST_RETRY
    )
    openai_server.faults.extend([Fault.http(503)] * 20)
    with pytest.raises(BackendHTTPError):
        embedder.embed(TEXTS)
    assert len(openai_server.requests) == FAST_RETRY.max_attempts

    co = cohere.ClientV2(api_key=fake_cohere.KEY, base_url=cohere_server.url, max_retries=5)
    cohere_embedder = CohereEmbedder("embed-english-light-v3.0", client=co, retry=FAST_RETRY)
    cohere_server.faults.extend([Fault.http(503)] * 20)
    with pytest.raises(BackendHTTPError):
        cohere_embedder.embed(TEXTS)
    assert len(cohere_server.requests) == FAST_RETRY.max_attempts
