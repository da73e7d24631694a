"""The service's chat completions report the model's token usage to the stock ``openai`` client."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ragmem.server.app import create_app
from tests.server.conftest import DOCS, live_server, settings

openai = pytest.importorskip("openai")
pytest.importorskip("tiktoken")

QUESTION = [{"role": "user", "content": "capital of Portugal?"}]


@pytest.fixture
def upstream():
    from tests.remote.fake_openai import FakeOpenAI

    fake = FakeOpenAI(require_key=False)
    fake.server.start()
    yield fake
    fake.server.stop()


def _serve(tmp_path, llm=None):
    app = create_app(settings(tmp_path, **({"llm": llm} if llm is not None else {})))
    return live_server(app)


def _seed(url: str) -> None:
    with httpx.Client(base_url=url, timeout=60) as http:
        assert http.post("/collections", json={"name": "docs"}).status_code == 201
        reply = http.post("/collections/docs/documents", json={"documents": DOCS})
        assert reply.status_code == 200


def _upstream_llm(upstream):
    from ragmem.llms.openai import OpenAIChat
    from ragmem.remote import RetryPolicy

    return OpenAIChat(
        "gpt-4o-mini",
        base_url=f"{upstream.server.url}/v1",
        api_key="sk-upstream",
        retry=RetryPolicy(max_attempts=1),
    )


def _reported(upstream) -> dict[str, int]:
    """What the fake upstream reported for its last request (it counts words)."""
    body = upstream.server.bodies("/v1/chat/completions")[-1]
    prompt = sum(len(m["content"].split()) for m in body["messages"])
    completion = len(("echo: " + body["messages"][-1]["content"]).split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _stream_with_usage(client) -> list[Any]:
    stream = client.chat.completions.create(
        model="docs", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    return list(stream)


def test_completion_usage_is_the_models(tmp_path, upstream):
    with _serve(tmp_path, _upstream_llm(upstream)) as url:
        _seed(url)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(model="docs", messages=QUESTION)
        assert reply.usage is not None
        assert reply.usage.model_dump(exclude_none=True) == _reported(upstream)


def test_stream_ends_with_a_usage_chunk_when_asked(tmp_path, upstream):
    with _serve(tmp_path, _upstream_llm(upstream)) as url:
        _seed(url)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        *body, last = _stream_with_usage(client)
        assert last.choices == []
        assert last.usage is not None
        assert last.usage.model_dump(exclude_none=True) == _reported(upstream)
        assert all(c.usage is None for c in body)
        assert body[-1].model_extra["citations"]
        # without the option, as with OpenAI, no chunk carries usage
        plain = list(client.chat.completions.create(model="docs", messages=QUESTION, stream=True))
        assert all(c.usage is None for c in plain)
        assert plain[-1].model_extra["citations"]


def test_no_model_no_usage(tmp_path):
    with _serve(tmp_path) as url:
        _seed(url)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        assert client.chat.completions.create(model="docs", messages=QUESTION).usage is None
        assert all(c.usage is None for c in _stream_with_usage(client))
