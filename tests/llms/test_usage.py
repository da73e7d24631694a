"""Token usage: what OpenAIChat and CohereChat read from replies and streams, and ask for."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

pytest.importorskip("openai")
pytest.importorskip("cohere")
pytest.importorskip("tiktoken")

import cohere
import openai

from ragmem.llms import LLM, Message, Reply, Usage
from ragmem.llms.cohere import CohereChat
from ragmem.llms.openai import OpenAIChat
from tests.llms.conftest import sync_only_chat
from tests.llms.test_chat import ANSWER, MESSAGES
from tests.remote import fake_cohere, fake_openai
from tests.remote.conftest import FAST_RETRY

# The fakes count words: 2 + 5 in the prompt, 6 in the answer; Cohere's ``tokens``
# add the server's preamble to the input.
PROMPT, COMPLETION = 7, 6
EXPECTED = {
    "openai": Usage(prompt_tokens=PROMPT, completion_tokens=COMPLETION, total_tokens=13),
    "cohere": Usage(
        prompt_tokens=PROMPT + fake_cohere.PREAMBLE_TOKENS,
        completion_tokens=COMPLETION,
        total_tokens=PROMPT + fake_cohere.PREAMBLE_TOKENS + COMPLETION,
    ),
}


def _openai(server, **options) -> OpenAIChat:
    return OpenAIChat(
        "gpt-4o-mini",
        base_url=server.url + "/v1",
        api_key=fake_openai.KEY,
        retry=FAST_RETRY,
        **options,
    )


def _cohere(server, **options) -> CohereChat:
    return CohereChat(
        "command-a-03-2025",
        base_url=server.url,
        api_key=fake_cohere.KEY,
        retry=FAST_RETRY,
        **options,
    )


@pytest.fixture(params=["openai", "cohere"])
def vendor(request, openai_server, cohere_server):
    if request.param == "openai":
        return request.param, _openai(openai_server), openai_server
    return request.param, _cohere(cohere_server), cohere_server


# over real HTTP, against the fake servers ------------------------------------------------------


def test_reply_carries_the_usage_the_server_reported(vendor):
    name, llm, _ = vendor
    reply = llm.reply(MESSAGES)
    assert reply == Reply(text=ANSWER, usage=EXPECTED[name])


def test_stream_usage_is_known_once_the_stream_ends(vendor):
    name, llm, server = vendor
    stream = llm.stream(MESSAGES)
    assert stream.usage is None
    pieces = list(stream)
    assert len(pieces) > 1
    assert "".join(pieces) == ANSWER
    assert stream.usage == EXPECTED[name]
    body = server.bodies()[-1]
    if name == "openai":
        assert body["stream_options"] == {"include_usage": True}


def test_openai_asks_for_usage_only_on_streams(openai_server):
    llm = _openai(openai_server)
    llm.complete(MESSAGES)
    "".join(llm.stream(MESSAGES))
    plain, streamed = openai_server.bodies()
    # the real API refuses stream_options on a request that does not stream
    assert "stream_options" not in plain
    assert streamed["stream"] is True
    assert streamed["stream_options"] == {"include_usage": True}


def test_async_twins_carry_usage(vendor):
    name, llm, _ = vendor

    async def run():
        reply = await llm.reply_async(MESSAGES)
        stream = llm.stream_async(MESSAGES)
        pieces = [p async for p in stream]
        return reply, pieces, stream.usage

    reply, pieces, usage = asyncio.run(run())
    assert reply == Reply(text=ANSWER, usage=EXPECTED[name])
    assert "".join(pieces) == ANSWER
    assert usage == EXPECTED[name]


def test_a_sync_client_alone_reports_usage_on_the_async_twins(vendor):
    name, _, server = vendor
    llm = sync_only_chat(name, server.url)

    async def run():
        stream = llm.stream_async(MESSAGES)
        pieces = [p async for p in stream]
        return (await llm.reply_async(MESSAGES)).usage, pieces, stream.usage

    reply_usage, pieces, stream_usage = asyncio.run(run())
    assert "".join(pieces) == ANSWER
    assert reply_usage == stream_usage == EXPECTED[name]


def test_complete_still_returns_the_text_alone(vendor):
    _, llm, _ = vendor
    assert llm.complete(MESSAGES) == ANSWER


# exact requests and replies over httpx.MockTransport ------------------------------------------


def _sse(*events: object) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


def _chunk(choices: list[dict[str, object]], **extra: object) -> dict[str, object]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": choices,
        **extra,
    }


def _delta(text: str, finish: str | None = None) -> dict[str, object]:
    return {"index": 0, "delta": {"content": text}, "finish_reason": finish}


COMPLETION_JSON = {
    "id": "c",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "four"},
            "finish_reason": "stop",
        }
    ],
}


def _usage(prompt: int, completion: int, total: int) -> Usage:
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


class Recorder:
    """A MockTransport handler: records each request's JSON, answers from a queue."""

    def __init__(self, *replies: httpx.Response) -> None:
        self.replies = list(replies)
        self.bodies: list[dict[str, object]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        return self.replies.pop(0)


def _stream_reply(content: bytes) -> httpx.Response:
    return httpx.Response(200, content=content, headers={"content-type": "text/event-stream"})


def _openai_over(handler: Recorder) -> OpenAIChat:
    client = openai.OpenAI(
        api_key="sk-x",
        base_url="http://llm.test/v1",
        # the SDK types its own httpx build; any httpx client with a transport works
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),  # type: ignore[arg-type]
    )
    return OpenAIChat("gpt-4o-mini", client=client, retry=FAST_RETRY)


def test_openai_request_and_usage_over_mock_transport():
    usage = {"prompt_tokens": 21, "completion_tokens": 2, "total_tokens": 23}
    recorder = Recorder(
        httpx.Response(200, json={**COMPLETION_JSON, "usage": usage}),
        _stream_reply(
            _sse(
                _chunk([_delta("fo")], usage=None),
                _chunk([_delta("ur", "stop")], usage=None),
                _chunk([], usage={"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24}),
            )
        ),
    )
    llm = _openai_over(recorder)
    assert llm.reply(MESSAGES) == Reply(text="four", usage=_usage(21, 2, 23))
    stream = llm.stream(MESSAGES)
    assert "".join(stream) == "four"
    assert stream.usage == _usage(21, 3, 24)
    messages = [m.model_dump() for m in MESSAGES]
    assert recorder.bodies == [
        {"model": "gpt-4o-mini", "messages": messages},
        {
            "model": "gpt-4o-mini",
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    ]


def test_a_server_that_reports_no_usage_gives_none():
    # many OpenAI-compatible servers omit usage, or ignore stream_options
    recorder = Recorder(
        httpx.Response(200, json=COMPLETION_JSON),
        _stream_reply(_sse(_chunk([_delta("fo")]), _chunk([_delta("ur", "stop")]))),
    )
    llm = _openai_over(recorder)
    assert llm.reply(MESSAGES) == Reply(text="four", usage=None)
    stream = llm.stream(MESSAGES)
    assert "".join(stream) == "four"
    assert stream.usage is None


def _cohere_over(handler: Recorder) -> CohereChat:
    client = cohere.ClientV2(
        api_key="co-x",
        base_url="http://llm.test",
        httpx_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    return CohereChat("command-a-03-2025", client=client, retry=FAST_RETRY)


def _cohere_reply(usage: dict[str, object] | None) -> httpx.Response:
    body: dict[str, object] = {
        "id": "r",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "four"}]},
    }
    if usage is not None:
        body["usage"] = usage
    return httpx.Response(200, json=body)


def test_cohere_reads_tokens_before_billed_units():
    # Cohere documents both: ``tokens`` is what the model read and wrote (its preamble
    # included), ``billed_units`` what is billed; either may be missing.
    recorder = Recorder(
        _cohere_reply(
            {
                "billed_units": {"input_tokens": 21, "output_tokens": 105},
                "tokens": {"input_tokens": 186, "output_tokens": 105},
            }
        ),
        _cohere_reply({"billed_units": {"input_tokens": 21.0, "output_tokens": 105.0}}),
        _cohere_reply({"billed_units": {"input_tokens": 21}}),
        _cohere_reply(None),
    )
    llm = _cohere_over(recorder)
    assert llm.reply(MESSAGES).usage == _usage(186, 105, 291)
    assert llm.reply(MESSAGES).usage == _usage(21, 105, 126)
    assert llm.reply(MESSAGES).usage is None  # half a count is no count
    assert llm.reply(MESSAGES).usage is None
    assert recorder.bodies[0] == {
        "model": "command-a-03-2025",
        "messages": [m.model_dump() for m in MESSAGES],
        "stream": False,
    }


def test_cohere_stream_reads_usage_from_message_end():
    def event(kind: str, **data: object) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    def delta(text: str) -> bytes:
        return event("content-delta", index=0, delta={"message": {"content": {"text": text}}})

    usage = {
        "billed_units": {"input_tokens": 21, "output_tokens": 2},
        "tokens": {"input_tokens": 186, "output_tokens": 2},
    }
    end = {"finish_reason": "COMPLETE", "usage": usage}
    recorder = Recorder(
        _stream_reply(delta("fo") + delta("ur") + event("message-end", delta=end)),
        _stream_reply(delta("fo") + event("message-end", delta={"finish_reason": "COMPLETE"})),
    )
    llm = _cohere_over(recorder)
    stream = llm.stream(MESSAGES)
    assert "".join(stream) == "four"
    assert stream.usage == _usage(186, 2, 188)
    assert recorder.bodies[0]["stream"] is True
    stream = llm.stream(MESSAGES)
    assert "".join(stream) == "fo"
    assert stream.usage is None


# the interface -----------------------------------------------------------------------------------


class Plain(LLM):
    """An LLM that reports no usage: only ``_complete``."""

    def _complete(self, messages: list[Message]) -> str:
        return "plain"


def test_an_llm_without_usage_reports_none():
    llm = Plain()
    assert llm.reply(MESSAGES) == Reply(text="plain")
    stream = llm.stream(MESSAGES)
    assert list(stream) == ["plain"]
    assert stream.usage is None

    async def run():
        stream = llm.stream_async(MESSAGES)
        return await llm.reply_async(MESSAGES), [p async for p in stream], stream.usage

    assert asyncio.run(run()) == (Reply(text="plain"), ["plain"], None)


def test_usage_total_defaults_to_the_sum_and_must_be_non_negative():
    from pydantic import ValidationError

    assert Usage(prompt_tokens=3, completion_tokens=4) == _usage(3, 4, 7)
    with pytest.raises(ValidationError):
        Usage(prompt_tokens=-1, completion_tokens=2)
