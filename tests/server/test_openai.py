"""The OpenAI-compatible surface, driven by the stock ``openai`` client and LangChain."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import numpy as np
import pytest

from ragmem.server.app import create_app
from tests.server.conftest import DOCS, live_server, settings

openai = pytest.importorskip("openai")


def _seed(url: str) -> None:
    with httpx.Client(base_url=url, timeout=60) as http:
        assert http.post("/collections", json={"name": "docs"}).status_code == 201
        reply = http.post("/collections/docs/documents", json={"documents": DOCS})
        assert reply.status_code == 200


@pytest.fixture
def server(tmp_path):
    with live_server(create_app(settings(tmp_path))) as url:
        _seed(url)
        yield url


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


def test_models_lists_collections(client):
    assert [m.id for m in client.models.list()] == ["docs"]


def test_chat_without_llm_quotes_sources_and_says_so(client):
    reply = client.chat.completions.create(
        model="docs", messages=[{"role": "user", "content": "What is the capital of Portugal?"}]
    )
    text = reply.choices[0].message.content
    assert "No language model is configured" in text
    assert "[1] Lisbon is the capital of Portugal." in text
    extra = reply.model_extra
    assert extra["citations"][0]["doc_id"] == "lisbon"
    first = extra["sources"][0]
    assert DOCS[0]["text"][first["start"] : first["end"]] == first["text"]


def test_chat_stream_carries_sources_first_and_citations_last(client):
    stream = client.chat.completions.create(
        model="docs",
        stream=True,
        messages=[{"role": "user", "content": "What is the capital of Portugal?"}],
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "Lisbon is the capital of Portugal." in text
    assert chunks[0].model_extra["sources"][0]["doc_id"] == "lisbon"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"][0]["number"] == 1


def test_unknown_model_is_a_404_the_client_understands(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])


def test_embeddings_match_the_server_embedder(client):
    from ragmem import HashingEmbedder

    reply = client.embeddings.create(model="any", input=["red apple", "tax law"])
    got = np.array([d.embedding for d in reply.data], dtype=np.float32)
    want = HashingEmbedder(64).embed(["red apple", "tax law"])
    np.testing.assert_allclose(got, want, atol=1e-6)
    floats = client.embeddings.create(model="any", input="red apple", encoding_format="float")
    np.testing.assert_allclose(floats.data[0].embedding, want[0], atol=1e-6)


def test_langchain_chat_openai(server):
    chat_openai = pytest.importorskip("langchain_openai").ChatOpenAI
    llm = chat_openai(base_url=f"{server}/v1", api_key="unused", model="docs", max_retries=0)
    answer = llm.invoke("What is the capital of Portugal?")
    assert "Lisbon is the capital of Portugal." in answer.content
    pieces = "".join(str(c.content) for c in llm.stream("What is the capital of Portugal?"))
    assert "Lisbon is the capital of Portugal." in pieces


# -- with a model behind the server -----------------------------------------------------------


@pytest.fixture
def upstream():
    pytest.importorskip("tiktoken")
    from tests.remote.fake_openai import FakeOpenAI

    fake = FakeOpenAI(require_key=False)
    fake.server.start()
    yield fake
    fake.server.stop()


def _llm_server(tmp_path, upstream_url: str, **options):
    from ragmem.llms.openai import OpenAIChat
    from ragmem.remote import RetryPolicy

    llm = OpenAIChat(
        "gpt-4o-mini",
        base_url=f"{upstream_url}/v1",
        api_key="sk-upstream",
        retry=RetryPolicy(max_attempts=1),
        **options,
    )
    return live_server(create_app(settings(tmp_path, llm=llm)))


def test_chat_with_llm_returns_its_answer_and_cited_sources(tmp_path, upstream):
    with _llm_server(tmp_path, upstream.server.url) as url:
        _seed(url)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(
            model="docs", messages=[{"role": "user", "content": "capital of Portugal?"}]
        )
        # the fake model echoes its prompt, which holds the numbered sources
        assert reply.choices[0].message.content.startswith("echo: Sources:")
        assert "[1]" in reply.choices[0].message.content
        assert reply.model_extra["citations"][0]["doc_id"] == "lisbon"
        stream = client.chat.completions.create(
            model="docs",
            stream=True,
            messages=[{"role": "user", "content": "capital of Portugal?"}],
        )
        chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks).startswith("echo:")
        assert chunks[-1].model_extra["citations"][0]["doc_id"] == "lisbon"
    sent = upstream.server.bodies("/v1/chat/completions")
    assert "Lisbon is the capital of Portugal." in sent[0]["messages"][-1]["content"]


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, "RateLimitError"), (500, "APIStatusError"), (503, "APIStatusError")],
)
def test_upstream_failures_become_openai_errors(tmp_path, upstream, status, error):
    from tests.remote.fakeserver import Fault

    with _llm_server(tmp_path, upstream.server.url) as url:
        _seed(url)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        for stream in (False, True):
            upstream.server.faults.append(Fault.http(status))
            # a stream whose model fails at once is refused with the HTTP status itself
            with pytest.raises(getattr(openai, error)) as caught:
                client.chat.completions.create(
                    model="docs", stream=stream, messages=[{"role": "user", "content": "q"}]
                )
            assert caught.value.status_code in (429, 502)
            assert caught.value.body["type"] in ("rate_limit_error", "upstream_error")


def test_upstream_timeout_is_a_504(tmp_path, upstream):
    from tests.remote.fakeserver import Fault

    with _llm_server(tmp_path, upstream.server.url, timeout=0.3) as url:
        _seed(url)
        upstream.server.faults.append(Fault.stall(3.0))
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(
                model="docs", messages=[{"role": "user", "content": "q"}]
            )
        assert caught.value.status_code == 504


class _SlowStream:
    """An upstream that streams a long answer slowly and records how far it got."""

    def __init__(self, pieces: int = 400) -> None:
        self.pieces = pieces
        self.sent = 0
        self.stopped = threading.Event()

    def events(self):
        def chunk(delta, finish=None):
            body = {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(body)}\n\n"

        try:
            yield chunk({"role": "assistant", "content": ""})
            for i in range(self.pieces):
                self.sent = i + 1
                yield chunk({"content": f" w{i}"})
                time.sleep(0.02)
            yield chunk({}, "stop")
            yield "data: [DONE]\n\n"
        finally:
            self.stopped.set()


def test_stream_cut_mid_answer_ends_with_an_error_event(tmp_path, upstream):
    from tests.remote.fakeserver import Fault

    def cut(body):
        def events():
            yield 'data: {"id":"c","object":"chat.completion.chunk","created":0,'
            yield '"model":"m","choices":[{"index":0,"delta":{"content":"par"}}]}\n\n'
            yield 'data: {"error": {"message": "upstream overloaded", "type": "server_error"}}\n\n'

        return events()

    with _llm_server(tmp_path, upstream.server.url) as url:
        _seed(url)
        upstream.server.faults.append(Fault.change(cut))
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        stream = client.chat.completions.create(
            model="docs", stream=True, messages=[{"role": "user", "content": "q"}]
        )
        with pytest.raises(openai.APIError) as caught:
            list(stream)
        assert "overloaded" in str(caught.value)


def test_client_disconnect_stops_generation(tmp_path, upstream):
    from tests.remote.fakeserver import Fault

    slow = _SlowStream()
    with _llm_server(tmp_path, upstream.server.url) as url:
        _seed(url)
        upstream.server.faults.append(Fault.change(lambda body: slow.events()))
        body = {"model": "docs", "stream": True, "messages": [{"role": "user", "content": "q"}]}
        with (
            httpx.Client(base_url=url, timeout=30) as http,
            http.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            seen = 0
            for line in response.iter_lines():
                if '"content": " w' in line:
                    seen += 1
                if seen == 3:
                    break  # leaving the block closes the connection mid-answer
        assert slow.stopped.wait(30), "the upstream stream was never closed"
    assert slow.sent < slow.pieces


def _sse_lines(url: str, body: dict[str, Any]) -> list[str]:
    """Every ``data:`` line of a streamed chat completion, read to the end over HTTP."""
    with (
        httpx.Client(base_url=url, timeout=30) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        return [line for line in response.iter_lines() if line.startswith("data: ")]


def _partial_chunk(text: str) -> str:
    body = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return f"data: {json.dumps(body)}\n\n"


def test_stream_whose_connection_closes_mid_answer_ends_with_an_error_event(tmp_path, upstream):
    # the model's server sends part of an answer, then its connection closes: no
    # finish_reason and no [DONE], so the answer is cut, not complete
    from tests.remote.fakeserver import Fault

    def cut(body):
        return iter([_partial_chunk("The capital"), _partial_chunk(" of Portugal is")])

    with _llm_server(tmp_path, upstream.server.url) as url:
        _seed(url)
        upstream.server.faults.append(Fault.change(cut))
        body = {"model": "docs", "stream": True, "messages": [{"role": "user", "content": "q"}]}
        lines = _sse_lines(url, body)
    events = [json.loads(line[6:]) for line in lines if line != "data: [DONE]"]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if "choices" in e)
    assert text == "The capital of Portugal is"  # what arrived was relayed
    assert "error" in events[-1], "a cut answer must end with an error event"
    assert events[-1]["error"]["type"] == "upstream_error"
    assert not any(e.get("choices") and e["choices"][0]["finish_reason"] for e in events)
    assert "data: [DONE]" not in lines


def test_stream_that_stalls_mid_answer_ends_with_an_error_event(tmp_path, upstream):
    # the model sends a piece, then nothing while keeping the connection open: the
    # server's read timeout ends the stream with an error, never a hung connection
    from tests.remote.fakeserver import Fault

    released = threading.Event()

    def stalled(body):
        yield _partial_chunk("The capital")
        released.wait(30)

    with _llm_server(tmp_path, upstream.server.url, timeout=0.5) as url:
        _seed(url)
        upstream.server.faults.append(Fault.change(stalled))
        body = {"model": "docs", "stream": True, "messages": [{"role": "user", "content": "q"}]}
        try:
            lines = _sse_lines(url, body)
        finally:
            released.set()
    last = json.loads(lines[-1][6:])
    assert "The capital" in "".join(lines)
    assert last["error"]["type"] == "upstream_error"
    assert last["error"]["code"] == "upstream_timeout"
