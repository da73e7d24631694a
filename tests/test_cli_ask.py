"""`ragmem ask` against the fake OpenAI-compatible server: citations exist in the store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ragmem import RAGPipeline
from ragmem.cli import main

pytest.importorskip("openai", reason="needs ragmem[openai]")

from tests.remote.fake_openai import KEY, FakeOpenAI


@pytest.fixture(scope="module")
def chat_server():
    fake = FakeOpenAI()
    fake.server.start()
    yield fake.server
    fake.server.stop()


@pytest.fixture
def index(tmp_path, capsys):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "solar.md").write_text(
        "# Solar\n\nSolar panels turn sunlight into electricity. "
        "They work best facing south.\n\nPanels last about 25 years.",
        encoding="utf-8",
    )
    (folder / "wind.txt").write_text(
        "Wind turbines turn moving air into electricity. Offshore wind is steadier.",
        encoding="utf-8",
    )
    store = str(tmp_path / "index")
    assert main(["index", str(folder), "--store", store, "--embedder", "hashing"]) == 0
    capsys.readouterr()
    return folder, store


def ask(capsys, store: str, url: str, *extra: str) -> tuple[int, str, str]:
    argv = ["ask", "How do solar panels make electricity?", "--store", store]
    code = main([*argv, "--model", "gpt-4o-mini", "--base-url", url + "/v1", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_ask_answers_with_citations_that_exist_in_the_store(
    capsys, monkeypatch, index, chat_server
):
    _, store = index
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    code, out, err = ask(capsys, store, chat_server.url, "--json")
    assert code == 0, err
    result = json.loads(out)
    # the fake model echoes the prompt, so its answer cites every source it was sent
    assert result["answer"].startswith("echo: Sources:")
    cited = result["citations"]
    assert cited
    assert [c["number"] for c in cited] == sorted(
        {int(n) for n in re.findall(r"\[(\d+)\]", result["answer"])}
    )
    (request,) = chat_server.bodies("/v1/chat/completions")
    assert request["model"] == "gpt-4o-mini"
    assert request["messages"][0]["role"] == "system"

    with RAGPipeline(store, read_only=True) as rag:
        for citation in cited:
            records = rag.store.get(citation["chunk_ids"])  # raises if any id is unknown
            document = Path(citation["doc_id"]).read_text(encoding="utf-8")
            span = (citation["start"], citation["end"])
            assert document[span[0] : span[1]] == citation["text"]
            for record in records:
                start, end = record.metadata["start"], record.metadata["end"]
                assert isinstance(start, int)
                assert isinstance(end, int)
                assert span[0] <= start < end <= span[1]
                assert document[start:end] == record.text
                assert record.metadata["source"] == citation["source"]


def test_ask_streams_the_answer_then_lists_cited_sources(capsys, monkeypatch, index, chat_server):
    _, store = index
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    code, out, err = ask(capsys, store, chat_server.url)
    assert code == 0, err
    answer, _, sources = out.partition("\nSources cited:\n")
    assert answer.startswith("echo: Sources:")
    assert re.search(r"  \[1\] \S+solar\.md \[\d+:\d+\]  score ", sources)


def test_ask_server_errors_are_one_line(capsys, monkeypatch, index, chat_server):
    _, store = index
    monkeypatch.setenv("OPENAI_API_KEY", "wrong-key")
    code, out, err = ask(capsys, store, chat_server.url)
    assert code == 1
    assert out == ""
    assert err.startswith("ragmem: error: ")
    assert err.count("\n") == 1
    assert "wrong-key" not in err


def test_ask_json_reports_the_tokens_the_model_used(capsys, monkeypatch, index, chat_server):
    _, store = index
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    code, out, err = ask(capsys, store, chat_server.url, "--json")
    assert code == 0, err
    result = json.loads(out)
    # the fake server counts words
    request = chat_server.bodies("/v1/chat/completions")[-1]
    prompt = sum(len(m["content"].split()) for m in request["messages"])
    completion = len(result["answer"].split())
    assert result["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
