"""CohereEmbedder against the fake Cohere server and over httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json

import cohere
import httpx
import numpy as np
import pytest

pytest.importorskip("cohere")

from ragmem.embedders.cohere import CohereEmbedder
from ragmem.errors import ConfigurationError
from ragmem.testing import EmbedderContract
from tests.remote.conftest import FAST_RETRY
from tests.remote.fake_cohere import KEY


def make(server, **options):
    options.setdefault("retry", FAST_RETRY)
    return CohereEmbedder(base_url=server.url, api_key=KEY, **options)


class TestCohereFloatContract(EmbedderContract):
    @pytest.fixture
    def embedder(self, cohere_server):
        return make(
            cohere_server, model="embed-v4.0", output_dimension=256, max_texts_per_request=16
        )


@pytest.mark.parametrize("kind", ["int8", "uint8", "binary", "ubinary"])
class TestCohereCompressedContract(EmbedderContract):
    @pytest.fixture
    def embedder(self, cohere_server, kind):
        return make(
            cohere_server,
            model="embed-english-light-v3.0",
            embedding_type=kind,
            max_texts_per_request=16,
        )


def test_purpose_picks_input_type(cohere_server):
    embedder = make(cohere_server, model="embed-english-light-v3.0")
    embedder.embed(["doc"])
    embedder.embed(["query"], purpose="query")
    clustering = make(cohere_server, model="embed-english-light-v3.0", input_type="clustering")
    clustering.embed(["x"], purpose="query")
    assert [b["input_type"] for b in cohere_server.bodies()] == [
        "search_document",
        "search_query",
        "clustering",
    ]


def test_unpacking_matches_the_float_vectors(cohere_server):
    """Each compressed type, unpacked, agrees with the float vectors it came from."""
    texts = ["alpha beta gamma", "delta epsilon", "zeta eta theta iota"]
    floats = make(cohere_server, model="embed-english-light-v3.0", normalize=False).embed(texts)
    for kind in ("int8", "uint8"):
        got = make(
            cohere_server, model="embed-english-light-v3.0", embedding_type=kind, normalize=False
        ).embed(texts)
        scale = np.abs(floats).max(axis=1, keepdims=True) / 127
        np.testing.assert_allclose(got * scale, floats, atol=scale.max())
    for kind in ("binary", "ubinary"):
        got = make(
            cohere_server, model="embed-english-light-v3.0", embedding_type=kind, normalize=False
        ).embed(texts)
        assert got.shape == floats.shape
        np.testing.assert_array_equal(got, np.where(floats > 0, 1.0, -1.0))


def test_output_dimension_validation():
    with pytest.raises(ConfigurationError):
        CohereEmbedder("embed-english-v3.0", output_dimension=256)
    with pytest.raises(ConfigurationError):
        CohereEmbedder("embed-v4.0", output_dimension=300)
    with pytest.raises(ConfigurationError):
        CohereEmbedder("my-custom-model")
    with pytest.raises(ConfigurationError):
        CohereEmbedder("embed-english-v3.0", dimensions=512)
    assert CohereEmbedder("embed-v4.0", output_dimension=512).dimensions == 512


def test_batches_of_at_most_96_texts(cohere_server):
    embedder = make(cohere_server, model="embed-english-light-v3.0")
    assert embedder.embed([f"text {i}" for i in range(200)]).shape == (200, 384)
    assert [len(b["texts"]) for b in cohere_server.bodies()] == [96, 96, 8]


def test_exact_request_body_over_mock_transport():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((request.url.path, request.headers["authorization"], body))
        n = len(body["texts"])
        return httpx.Response(
            200,
            json={
                "id": "x",
                "response_type": "embeddings_by_type",
                "texts": body["texts"],
                "embeddings": {"ubinary": [[255, 0]] * n},
            },
        )

    client = cohere.ClientV2(
        api_key=KEY,
        base_url="http://mock",
        httpx_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    embedder = CohereEmbedder(
        "custom-embed", dimensions=16, embedding_type="ubinary", client=client, retry=FAST_RETRY
    )
    out = embedder.embed(["a", "b"], purpose="query")
    assert out.shape == (2, 16)
    np.testing.assert_allclose(out[0] * 4, [1.0] * 8 + [-1.0] * 8)
    assert seen == [
        (
            "/v2/embed",
            f"Bearer {KEY}",
            {
                "model": "custom-embed",
                "texts": ["a", "b"],
                "input_type": "search_query",
                "embedding_types": ["ubinary"],
                "truncate": "NONE",
            },
        )
    ]


def test_key_from_either_environment_variable(cohere_server, monkeypatch):
    monkeypatch.delenv("CO_API_KEY", raising=False)
    monkeypatch.setenv("COHERE_API_KEY", KEY)
    embedder = CohereEmbedder("embed-english-light-v3.0", base_url=cohere_server.url)
    assert embedder.embed(["x"]).shape == (1, 384)


def test_missing_key(monkeypatch):
    monkeypatch.delenv("CO_API_KEY", raising=False)
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="CO_API_KEY"):
        CohereEmbedder("embed-english-light-v3.0").embed(["x"])


def test_async_with_an_injected_async_client():
    seen = []

    async def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        return httpx.Response(
            200,
            json={"id": "x", "embeddings": {"int8": [[3, -4]] * len(body["texts"])}},
        )

    async def run():
        client = cohere.AsyncClientV2(
            api_key=KEY,
            base_url="http://mock",
            httpx_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        )
        embedder = CohereEmbedder(
            "custom-embed", dimensions=2, embedding_type="int8", async_client=client
        )
        return await embedder.embed_async(["q"], purpose="query")

    np.testing.assert_allclose(asyncio.run(run()), [[0.6, -0.8]], atol=1e-6)
    assert seen == [
        {
            "model": "custom-embed",
            "texts": ["q"],
            "input_type": "search_query",
            "embedding_types": ["int8"],
            "truncate": "NONE",
        }
    ]


def test_output_dimension_is_sent(cohere_server):
    embedder = make(cohere_server, model="embed-v4.0", output_dimension=512)
    assert embedder.embed(["x"]).shape == (1, 512)
    assert cohere_server.bodies() == [
        {
            "model": "embed-v4.0",
            "texts": ["x"],
            "input_type": "search_document",
            "embedding_types": ["float"],
            "truncate": "NONE",
            "output_dimension": 512,
        }
    ]
