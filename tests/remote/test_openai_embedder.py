"""OpenAIEmbedder against the fake OpenAI server and over httpx.MockTransport."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import numpy as np
import openai
import pytest

pytest.importorskip("openai")
pytest.importorskip("tiktoken")

from ragmem.embedders.openai import OpenAIEmbedder
from ragmem.errors import (
    BackendHTTPError,
    ConfigurationError,
    TextTooLongError,
)
from ragmem.testing import EmbedderContract
from tests.remote.conftest import FAST_RETRY
from tests.remote.fake_openai import KEY


def make(server, **options):
    options.setdefault("retry", FAST_RETRY)
    return OpenAIEmbedder(base_url=server.url + "/v1", api_key=KEY, **options)


class TestOpenAIEmbedderContract(EmbedderContract):
    @pytest.fixture
    def embedder(self, openai_server):
        return make(
            openai_server, model="text-embedding-3-small", dimensions=256, max_inputs_per_request=16
        )


class TestCompatibleServerContract(EmbedderContract):
    """A non-OpenAI model on an OpenAI-compatible server (vLLM, Ollama, TEI style)."""

    @pytest.fixture
    def embedder(self, openai_server):
        return make(
            openai_server, model="nomic-embed-text", dimensions=768, max_inputs_per_request=8
        )


# --- exact request bodies (httpx.MockTransport) ------------------------------------------


def vector_b64(width, seed=0):
    v = np.random.default_rng(seed).normal(size=width).astype("<f4")
    return base64.b64encode(v.tobytes()).decode()


def mock_embedder(handler, **options):
    client = openai.OpenAI(
        api_key=KEY,
        base_url="http://mock/v1",
        # the SDK types its own httpx build; any httpx client with a transport works
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),  # type: ignore[arg-type]
    )
    return OpenAIEmbedder(client=client, retry=FAST_RETRY, **options)


def test_request_body_with_matryoshka_dimensions():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((request.url.path, request.headers["authorization"], body))
        data = [
            {"object": "embedding", "index": i, "embedding": vector_b64(64, i)}
            for i in range(len(body["input"]))
        ]
        return httpx.Response(
            200,
            json={
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            },
        )

    embedder = mock_embedder(handler, model="text-embedding-3-large", dimensions=64)
    out = embedder.embed(["alpha", "beta"], purpose="query")
    assert out.shape == (2, 64)
    assert seen == [
        (
            "/v1/embeddings",
            f"Bearer {KEY}",
            {
                "model": "text-embedding-3-large",
                "input": ["alpha", "beta"],
                "dimensions": 64,
                "encoding_format": "base64",
            },
        )
    ]


def test_request_body_native_width_float_format():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        data = [
            {"object": "embedding", "index": i, "embedding": [1.0, 0.0, 0.0]}
            for i in range(len(body["input"]))
        ]
        return httpx.Response(
            200,
            json={
                "object": "list",
                "data": data,
                "model": "m",
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            },
        )

    embedder = mock_embedder(handler, model="bge-small", dimensions=3, encoding_format="float")
    np.testing.assert_allclose(embedder.embed(["x"]), [[1.0, 0.0, 0.0]])
    assert seen == [{"model": "bge-small", "input": ["x"], "encoding_format": "float"}]


def test_rows_are_placed_by_index_not_arrival_order():
    def handler(request: httpx.Request) -> httpx.Response:
        data = [
            {"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
            {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]},
        ]
        return httpx.Response(
            200,
            json={
                "object": "list",
                "data": data,
                "model": "m",
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            },
        )

    out = mock_embedder(handler, model="m", dimensions=2).embed(["a", "b"])
    np.testing.assert_allclose(out, [[1.0, 0.0], [0.0, 1.0]])


# --- batching by the API's limits -------------------------------------------------------


def test_batches_respect_input_and_token_limits(openai_server):
    embedder = make(
        openai_server,
        model="text-embedding-3-small",
        dimensions=32,
        max_inputs_per_request=5,
        max_tokens_per_request=40,
    )
    texts = [("word " * 9).strip() + f" {i}" for i in range(12)]  # about 11 tokens each
    vectors = embedder.embed(texts)
    assert vectors.shape == (12, 32)
    sizes = [len(b["input"]) for b in openai_server.bodies("/v1/embeddings")]
    assert sum(sizes) == 12
    tokenizer = embedder.tokenizer
    for body in openai_server.bodies("/v1/embeddings"):
        assert len(body["input"]) <= 5
        assert sum(tokenizer.count(t) for t in body["input"]) <= 40
    np.testing.assert_allclose(vectors, embedder.embed(texts[:1] + texts[1:]), atol=1e-6)


def test_text_over_the_per_input_limit_is_rejected_before_sending(openai_server):
    embedder = make(openai_server, model="text-embedding-3-small")
    with pytest.raises(TextTooLongError, match="texts\\[1\\]"):
        embedder.embed(["short", "token " * 9000])
    assert openai_server.requests == []


def test_default_limits_match_the_server(openai_server):
    embedder = make(openai_server, model="text-embedding-3-small", dimensions=8)
    texts = ["a few words here"] * 2100  # more than 2048 inputs: two requests
    assert embedder.embed(texts).shape == (2100, 8)
    assert [len(b["input"]) for b in openai_server.bodies()] == [2048, 52]


# --- configuration ------------------------------------------------------------------------


def test_unknown_model_needs_dimensions():
    with pytest.raises(ConfigurationError, match="dimensions"):
        OpenAIEmbedder("my-model", base_url="http://127.0.0.1:1/v1")


def test_ada_does_not_take_dimensions():
    with pytest.raises(ConfigurationError):
        OpenAIEmbedder("text-embedding-ada-002", dimensions=256)


def test_client_side_matryoshka_truncates_and_renormalises(openai_server):
    full = make(openai_server, model="nomic-embed-text", dimensions=768).embed(["truncate me"])
    short = make(
        openai_server, model="nomic-embed-text", dimensions=100, matryoshka="client"
    ).embed(["truncate me"])
    expected = full[:, :100] / np.linalg.norm(full[:, :100])
    np.testing.assert_allclose(short, expected, atol=1e-6)
    assert "dimensions" not in openai_server.bodies()[-1]


def test_api_key_from_environment_when_first_needed(openai_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    embedder = OpenAIEmbedder(
        "text-embedding-3-small", dimensions=8, base_url=openai_server.url + "/v1", retry=FAST_RETRY
    )
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert embedder.embed(["hello"]).shape == (1, 8)


def test_missing_key_for_openai_is_a_configuration_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    embedder = OpenAIEmbedder("text-embedding-3-small")
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        embedder.embed(["hello"])


def test_wrong_key_error_does_not_leak_the_key(openai_server):
    secret = "sk-live-DoNotLeakThis0123456789"
    embedder = OpenAIEmbedder(
        "text-embedding-3-small",
        api_key=secret,
        base_url=openai_server.url + "/v1",
        retry=FAST_RETRY,
    )
    with pytest.raises(BackendHTTPError) as info:
        embedder.embed(["hello"])
    assert info.value.status_code == 401
    assert secret not in str(info.value)
    assert secret not in info.value.body
    assert secret not in repr(embedder)
    assert len(openai_server.requests) == 1  # 401 is not retried


def test_tokens_per_minute_limit_holds_on_the_server(openai_server):
    tpm = 6000.0  # 100 tokens per second, bucket of 100
    embedder = make(
        openai_server,
        model="text-embedding-3-small",
        dimensions=32,
        max_inputs_per_request=1,
        tokens_per_minute=tpm,
    )
    text = " ".join(["token"] * 40)  # 40 tokens per request
    assert embedder.tokenizer.count(text) == 40
    embedder.embed([text] * 6)
    arrivals = [r.arrived for r in openai_server.requests]
    assert len(arrivals) == 6
    rate, burst = tpm / 60.0, tpm / 60.0
    for i, start in enumerate(arrivals):
        for j in range(i, len(arrivals)):
            assert 40 * (j - i + 1) <= burst + rate * (arrivals[j] - start) + 40


def test_registered_by_name():
    from ragmem.embedders.cohere import CohereEmbedder
    from ragmem.registry import get_embedder, load_backend

    assert load_backend("embedders", "openai") is OpenAIEmbedder
    assert load_backend("embedders", "cohere") is CohereEmbedder
    built = get_embedder("openai", model="text-embedding-3-small", dimensions=64)
    assert built.dimensions == 64


def _canned(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    data = [
        {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0]}
        for i, t in enumerate(body["input"])
    ]
    return httpx.Response(
        200,
        json={
            "object": "list",
            "data": data,
            "model": "m",
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        },
    )


def test_async_with_an_injected_async_client():
    seen = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return _canned(request)

    async def run():
        async_client = openai.AsyncOpenAI(
            api_key=KEY,
            base_url="http://mock/v1",
            http_client=httpx.AsyncClient(  # type: ignore[arg-type]
                transport=httpx.MockTransport(handler)
            ),
        )
        embedder = OpenAIEmbedder("m", dimensions=2, async_client=async_client, normalize=False)
        return await embedder.embed_async(["ab", "abcd"], purpose="query")

    out = asyncio.run(run())
    np.testing.assert_allclose(out, [[2.0, 1.0], [4.0, 1.0]])
    assert seen == [{"model": "m", "input": ["ab", "abcd"], "encoding_format": "base64"}]


def test_async_with_only_a_sync_client_runs_it_in_a_thread():
    embedder = mock_embedder(_canned, model="m", dimensions=2, normalize=False)
    out = asyncio.run(embedder.embed_async(["abc"]))
    np.testing.assert_allclose(out, [[3.0, 1.0]])


def test_compatible_server_without_a_key(monkeypatch):
    """Local servers (Ollama, vLLM, LM Studio) need no key: none is read or required."""
    from tests.remote.fake_openai import FakeOpenAI

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fake = FakeOpenAI(extra_models={"nomic-embed-text": 768}, require_key=False)
    fake.server.start()
    try:
        embedder = OpenAIEmbedder(
            "nomic-embed-text", dimensions=768, base_url=fake.server.url + "/v1", retry=FAST_RETRY
        )
        assert embedder.embed(["local model"]).shape == (1, 768)
        assert fake.server.requests[0].headers["authorization"] == "Bearer not-needed"
    finally:
        fake.server.stop()
