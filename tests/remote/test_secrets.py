"""No form of an API key escapes a remote adapter: not in errors, tracebacks or logs.

A hostile (or careless) server echoes the key it was sent, as is, upper-cased,
URL-encoded and base64-encoded, in its error body and its headers, at 401, 500 and
400. For every remote adapter, sync, async and streamed, the raised error's ``str``
and ``repr``, its formatted traceback with chained causes, and every log record at
every level (httpx and httpcore echo headers at DEBUG) must hold none of them.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import traceback
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

import pytest

pytest.importorskip("openai")
pytest.importorskip("cohere")
pytest.importorskip("tiktoken")

from ragmem.embedders.cohere import CohereEmbedder
from ragmem.embedders.openai import OpenAIEmbedder
from ragmem.errors import BackendError
from ragmem.llms import Message
from ragmem.llms.cohere import CohereChat
from ragmem.llms.openai import OpenAIChat
from ragmem.remote import RetryPolicy
from ragmem.remote.secrets import redact
from ragmem.retrievers.cohere import CohereReranker
from ragmem.types import Hit
from tests.remote.fakeserver import FakeServer, Reply

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.remote.fakeserver import Request

KEYS = [
    "sk-proj-Qx7Lm2Vb9Nc4Rt1Yw8Kd",  # shaped like a key
    "opensesame lettuce 42",  # shaped like nothing in particular
]
RETRY = RetryPolicy(max_attempts=2, initial_delay=0.001, max_delay=0.001, max_elapsed=10.0)
MESSAGES = [Message(role="user", content="hello")]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def forms(key: str) -> list[str]:
    """Every way the fake server echoes ``key``."""
    return [
        key,
        key.upper(),
        key.lower(),
        quote(key, safe=""),
        quote_plus(key),
        _b64(key),
        base64.urlsafe_b64encode(key.encode()).decode(),
        _b64(f"Bearer {key}"),
        _b64(f"user:{key}"),
    ]


class EchoServer:
    """Answers every request with ``status`` and the sent key in every form."""

    def __init__(self) -> None:
        self.status = 401
        self.server = FakeServer(self.app, error_body=lambda status: {"message": "error"})

    def app(self, request: Request) -> Reply:
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        echoed = " | ".join(forms(key))
        message = f"bad request for key {echoed}"
        body = {"message": message, "error": {"message": message, "type": "invalid_request"}}
        headers = {f"x-echo-{i}": value for i, value in enumerate(forms(key)) if value.isascii()}
        return Reply(self.status, body, headers)


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    server.server.start()
    yield server
    server.server.stop()


def _hits() -> list[Hit]:
    return [Hit(id="a", score=1.0, text="first"), Hit(id="b", score=0.5, text="second")]


# name -> (build(url, key), calls: list of (label, run(adapter)))
ADAPTERS: dict[str, Callable[[str, str | None], Any]] = {
    "openai-embedder": lambda url, key: OpenAIEmbedder(
        "text-embedding-3-small", base_url=url + "/v1", api_key=key, retry=RETRY
    ),
    "compatible-embedder": lambda url, key: OpenAIEmbedder(
        "nomic-embed-text", dimensions=8, base_url=url + "/v1", api_key=key, retry=RETRY
    ),
    "cohere-embedder": lambda url, key: CohereEmbedder(
        "embed-english-light-v3.0", base_url=url, api_key=key, retry=RETRY
    ),
    "openai-chat": lambda url, key: OpenAIChat(
        "gpt-4o-mini", base_url=url + "/v1", api_key=key, retry=RETRY
    ),
    "compatible-chat": lambda url, key: OpenAIChat(
        "llama3", base_url=url + "/v1", api_key=key, retry=RETRY
    ),
    "cohere-chat": lambda url, key: CohereChat(
        "command-a-03-2025", base_url=url, api_key=key, retry=RETRY
    ),
    "cohere-reranker": lambda url, key: CohereReranker(
        "rerank-v3.5", base_url=url, api_key=key, retry=RETRY
    ),
}


async def _drain(pieces: Any) -> list[str]:
    return [piece async for piece in pieces]


def _calls(name: str, adapter: Any) -> list[Callable[[], Any]]:
    if name.endswith("embedder"):
        return [
            lambda: adapter.embed(["a text"]),
            lambda: asyncio.run(adapter.embed_async(["a text"])),
        ]
    if name.endswith("chat"):
        return [
            lambda: adapter.complete(MESSAGES),
            lambda: list(adapter.stream(MESSAGES)),
            lambda: asyncio.run(adapter.complete_async(MESSAGES)),
            lambda: asyncio.run(_drain(adapter.stream_async(MESSAGES))),
        ]
    return [
        lambda: adapter.rerank("query", _hits()),
        lambda: asyncio.run(adapter.rerank_async("query", _hits())),
    ]


@pytest.mark.parametrize("key", KEYS, ids=["keylike", "plain"])
@pytest.mark.parametrize("status", [401, 500, 400])
@pytest.mark.parametrize("name", list(ADAPTERS))
def test_no_form_of_the_key_escapes(name, status, key, echo, caplog):
    echo.status = status
    caplog.set_level(logging.DEBUG)
    adapter = ADAPTERS[name](echo.server.url, key)
    seen = [repr(adapter), str(adapter)]
    for call in _calls(name, adapter):
        with pytest.raises(BackendError) as info:
            call()
        error = info.value
        seen += [str(error), repr(error), "".join(traceback.format_exception(error))]
        assert getattr(error, "status_code", status) == status
    seen += [caplog.text]
    seen += [record.getMessage() for record in caplog.records]
    assert any("HTTP" in record.getMessage() for record in caplog.records), "no DEBUG logs seen"
    text = "\n".join(seen)
    for form in forms(key):
        assert form not in text, f"{form!r} leaked"


@pytest.mark.parametrize(
    ("name", "variable"), [("openai-chat", "OPENAI_API_KEY"), ("cohere-embedder", "CO_API_KEY")]
)
def test_a_key_from_the_environment_is_masked_too(name, variable, echo, caplog, monkeypatch):
    key = "env-held Key 77aa88bb"
    monkeypatch.setenv(variable, key)
    echo.status = 401
    caplog.set_level(logging.DEBUG)
    adapter = ADAPTERS[name](echo.server.url, None)
    call = _calls(name, adapter)[0]
    with pytest.raises(BackendError) as info:
        call()
    text = "\n".join(
        [str(info.value), "".join(traceback.format_exception(info.value)), caplog.text]
    )
    for form in forms(key):
        assert form not in text


@pytest.mark.parametrize("prefix", ["", "a", "ab", "Basic user:", "token="])
def test_redact_masks_base64_at_any_alignment(prefix):
    key = "not-a-keyish-word-xyz"
    text = f"header {_b64(prefix + key + '!')} and {quote(key.upper(), safe='')}"
    masked = redact(text, [key])
    assert _b64(prefix + key + "!") not in masked
    assert quote(key.upper(), safe="") not in masked
    assert masked.startswith("header ")
