"""Answers and chat replies carry the token usage their LLM reported, over real HTTP."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("openai")
pytest.importorskip("tiktoken")

from ragmem import Document, HashingEmbedder, RAGPipeline
from ragmem.agents import ChatSession, Memory
from ragmem.llms import Usage
from ragmem.llms.openai import OpenAIChat
from tests.pipeline_helpers import CitingLLM
from tests.remote import fake_openai
from tests.remote.conftest import FAST_RETRY, openai_fake, openai_server

__all__ = ["openai_fake", "openai_server"]  # fixtures

DOCS = [
    Document(id="offline", text="ragmem runs fully offline with a bundled local model."),
    Document(id="bm25", text="BM25 keyword search updates incrementally without rebuilds."),
]


def _llm(server) -> OpenAIChat:
    return OpenAIChat(
        "gpt-4o-mini", base_url=server.url + "/v1", api_key=fake_openai.KEY, retry=FAST_RETRY
    )


def _pipeline(llm) -> RAGPipeline:
    rag = RAGPipeline(embedder=HashingEmbedder(dimensions=64), llm=llm, k=2)
    rag.ingest(DOCS)
    return rag


def _reported(server) -> Usage:
    """The usage the fake server reported for its last chat request (it counts words)."""
    body = server.bodies("/v1/chat/completions")[-1]
    prompt = sum(len(m["content"].split()) for m in body["messages"])
    completion = len(("echo: " + body["messages"][-1]["content"]).split())
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def test_query_answer_carries_usage(openai_server):
    answer = _pipeline(_llm(openai_server)).query("does ragmem run offline?")
    assert answer.text is not None
    assert answer.text.startswith("echo:")
    assert answer.usage == _reported(openai_server)
    assert answer.usage.prompt_tokens > 10
    assert "generate" in answer.timings


def test_query_async_answer_carries_usage(openai_server):
    rag = _pipeline(_llm(openai_server))
    answer = asyncio.run(rag.query_async("does ragmem run offline?"))
    assert answer.usage == _reported(openai_server)


def test_streamed_answer_carries_usage_once_it_ends(openai_server):
    stream = _pipeline(_llm(openai_server)).stream("does ragmem run offline?")
    assert stream.usage is None
    text = "".join(stream)
    assert stream.usage == _reported(openai_server)
    assert stream.answer.text == text
    assert stream.answer.usage == stream.usage
    assert openai_server.bodies()[-1]["stream_options"] == {"include_usage": True}


def test_no_usage_without_a_reporting_llm():
    rag = _pipeline(CitingLLM())
    assert rag.query("does ragmem run offline?").usage is None
    stream = rag.stream("does ragmem run offline?")
    assert stream.answer.usage is None
    rag_without_llm = _pipeline(None)
    assert rag_without_llm.query("does ragmem run offline?").usage is None


def test_chat_reply_carries_usage(openai_server):
    memory = Memory(embedder=HashingEmbedder(64))
    chat = ChatSession(_llm(openai_server), memory, user_id="ana")
    reply = chat.send("I live in Lisbon")
    assert reply.usage == _reported(openai_server)
    reply = asyncio.run(chat.send_async("I work in Porto"))
    assert reply.usage == _reported(openai_server)
    assert ChatSession(CitingLLM(), memory, user_id="bo").send("hi").usage is None
