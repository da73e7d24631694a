"""OpenAIChat and CohereChat against their fake servers: complete, stream, async twins."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("openai")
pytest.importorskip("cohere")
pytest.importorskip("tiktoken")

from ragmem.errors import BackendHTTPError, ConfigurationError, InvalidInputError, RateLimitError
from ragmem.llms import LLM, Message
from ragmem.llms.cohere import CohereChat
from ragmem.llms.openai import OpenAIChat
from ragmem.registry import load_backend
from tests.llms.conftest import sync_only_chat
from tests.remote import fake_cohere, fake_openai
from tests.remote.conftest import FAST_RETRY
from tests.remote.fakeserver import Fault

MESSAGES = [
    Message(role="system", content="Answer briefly."),
    Message(role="user", content="what is two plus two"),
]
ANSWER = "echo: what is two plus two"


@pytest.fixture(params=["openai", "cohere"])
def chat(request, openai_server, cohere_server):
    if request.param == "openai":
        llm: LLM = OpenAIChat(
            "gpt-4o-mini",
            base_url=openai_server.url + "/v1",
            api_key=fake_openai.KEY,
            temperature=0.0,
            max_tokens=50,
            retry=FAST_RETRY,
        )
        return llm, openai_server
    llm = CohereChat(
        "command-a-03-2025",
        base_url=cohere_server.url,
        api_key=fake_cohere.KEY,
        temperature=0.0,
        max_tokens=50,
        retry=FAST_RETRY,
    )
    return llm, cohere_server


def test_complete(chat):
    llm, server = chat
    assert llm.complete(MESSAGES) == ANSWER
    body = server.bodies()[-1]
    assert body["messages"] == [m.model_dump() for m in MESSAGES]
    assert body["temperature"] == 0.0
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 50
    assert not body.get("stream")


def test_stream_yields_pieces_that_join_to_the_answer(chat):
    llm, server = chat
    pieces = list(llm.stream(MESSAGES))
    assert len(pieces) > 1
    assert "".join(pieces) == ANSWER
    assert server.bodies()[-1]["stream"] is True


def test_async_twins(chat):
    llm, _ = chat

    async def run():
        text = await llm.complete_async(MESSAGES)
        pieces = [p async for p in llm.stream_async(MESSAGES)]
        return text, pieces

    text, pieces = asyncio.run(run())
    assert text == ANSWER
    assert "".join(pieces) == ANSWER


def test_dict_messages_are_accepted(chat):
    llm, _ = chat
    assert llm.complete([{"role": "user", "content": "hi"}]) == "echo: hi"


def test_retries_before_the_answer_and_before_the_first_piece(chat):
    llm, server = chat
    server.faults.extend([Fault.http(429, headers={"retry-after": "0"}), Fault.http(503)])
    assert llm.complete(MESSAGES) == ANSWER
    server.faults.extend([Fault.http(500), Fault.drop()])
    assert "".join(llm.stream(MESSAGES)) == ANSWER
    assert len(server.requests) == 6


def test_async_stream_retries_opening(chat):
    llm, server = chat
    server.faults.append(Fault.http(502))

    async def run():
        return [p async for p in llm.stream_async(MESSAGES)]

    assert "".join(asyncio.run(run())) == ANSWER
    assert len(server.requests) == 2


def test_errors_are_typed(chat):
    llm, server = chat
    server.faults.extend([Fault.http(429)] * FAST_RETRY.max_attempts)
    with pytest.raises(RateLimitError):
        llm.complete(MESSAGES)
    server.faults.append(Fault.http(400))
    with pytest.raises(BackendHTTPError) as info:
        list(llm.stream(MESSAGES))
    assert info.value.status_code == 400


def test_unknown_model_is_an_http_error(openai_server):
    llm = OpenAIChat("no-such-model", base_url=openai_server.url + "/v1", api_key=fake_openai.KEY)
    with pytest.raises(BackendHTTPError) as info:
        llm.complete(MESSAGES)
    assert info.value.status_code == 404


def test_empty_messages_rejected(chat):
    llm, server = chat
    with pytest.raises(InvalidInputError):
        llm.complete([])
    assert server.requests == []


def test_registered_by_name():
    assert load_backend("llms", "openai") is OpenAIChat
    assert load_backend("llms", "cohere") is CohereChat


def test_repr_has_no_key(chat):
    llm, _ = chat
    assert fake_openai.KEY not in repr(llm)
    assert fake_cohere.KEY not in repr(llm)


@pytest.mark.parametrize("vendor", ["openai", "cohere"])
def test_a_sync_client_alone_serves_the_async_twins(vendor, openai_server, cohere_server):
    server = openai_server if vendor == "openai" else cohere_server
    llm = sync_only_chat(vendor, server.url)

    async def run():
        text = await llm.complete_async(MESSAGES)
        pieces = [p async for p in llm.stream_async(MESSAGES)]
        return text, pieces

    text, pieces = asyncio.run(run())
    assert text == ANSWER
    assert "".join(pieces) == ANSWER


@pytest.mark.parametrize("chat_class", [OpenAIChat, CohereChat])
def test_max_tokens_must_be_positive(chat_class):
    with pytest.raises(ConfigurationError, match="max_tokens"):
        chat_class("m", max_tokens=0)
