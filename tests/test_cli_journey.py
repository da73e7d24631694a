"""The CLI with any model: remote embedders, --meta, delete, --version, budgets, k."""

from __future__ import annotations

import json

import pytest

from ragmem import RAGPipeline, __version__
from tests.test_cli import folder, run  # noqa: F401  (fixture)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        run(capsys, "--version")
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"ragmem {__version__}"


@pytest.mark.parametrize("command", ["search", "ask"])
def test_k_zero_is_a_usage_error(capsys, command, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        run(capsys, command, "q", "--store", str(tmp_path), "--k", "0")
    assert exit_.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_meta_and_delete_by_path_and_id(capsys, folder, tmp_path):  # noqa: F811
    store = str(tmp_path / "idx")
    code, out, err = run(
        capsys, "index", str(folder), "--store", store, "--embedder", "hashing",
        "--meta", "tenant=acme", "--meta", "year=2024", "--meta", 'acl=["eng"]',
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = run(capsys, "search", "cats", "--store", store, "--json", "--k", "10")
    hits = json.loads(out)
    assert {h["metadata"]["tenant"] for h in hits} == {"acme"}
    assert {h["metadata"]["year"] for h in hits} == {2024}
    assert {tuple(h["metadata"]["acl"]) for h in hits} == {("eng",)}
    cats = (folder / "cats.md").as_posix()
    code, out, err = run(capsys, "delete", cats, "--store", store)
    assert code == 0, err
    assert f"deleted: {cats}" in out
    code, out, _ = run(capsys, "search", "cats purr", "--store", store, "--json")
    assert cats not in {h["metadata"]["source"] for h in json.loads(out)}
    code, out, _ = run(
        capsys, "delete", "--doc-id", (folder / "dogs.txt").as_posix(), "--store", store
    )
    assert "1 removed" in out
    code, out, _ = run(capsys, "delete", str(folder), "--store", store)
    assert "data.jsonl" in out
    code, out, _ = run(capsys, "delete", str(folder), "--store", store)
    assert "nothing to delete" in out
    code, _, err = run(capsys, "delete", "--store", store)
    assert code == 1
    assert "PATH" in err


def test_ask_budget_reports_dropped_sources(capsys, folder, tmp_path):  # noqa: F811
    store = str(tmp_path / "idx")
    run(capsys, "index", str(folder), "--store", store, "--embedder", "hashing")
    code, out, err = run(capsys, "ask", "what do cats do?", "--store", store, "--budget", "20")
    assert code == 0
    assert "no source fits the --budget of 20 tokens" in out
    assert "left out" in err


def test_index_with_an_openai_compatible_server_and_reopen(capsys, folder, tmp_path, monkeypatch):  # noqa: F811
    pytest.importorskip("openai")
    pytest.importorskip("tiktoken")
    from tests.remote.fake_openai import KEY, FakeOpenAI
    from tests.remote.fakeserver import closed_port_url

    fake = FakeOpenAI(extra_models={"nomic-embed-text": 48})
    fake.server.start()
    try:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        store = str(tmp_path / "idx")
        # a first run that fails before storing anything does not pin the embedder
        code, _, err = run(
            capsys, "index", str(folder), "--store", store, "--embedder", "openai",
            "--model", "nomic-embed-text", "--dimensions", "48",
            "--base-url", closed_port_url() + "/v1",
        )  # fmt: skip
        assert code == 1, err
        code, _, err = run(
            capsys, "index", str(folder), "--store", store, "--embedder", "openai",
            "--model", "nomic-embed-text", "--dimensions", "48",
            "--base-url", fake.server.url + "/v1",
        )  # fmt: skip
        assert code == 0, err
        assert "api_key" not in (tmp_path / "idx" / "ragmem.json").read_text()
        assert KEY not in (tmp_path / "idx" / "ragmem.json").read_text()
        code, out, err = run(capsys, "search", "cats purr", "--store", store, "--json")
        assert code == 0, err
        assert json.loads(out)[0]["metadata"]["source"].endswith("cats.md")
        # an index built in Python with an embedder instance opens the same way
        from ragmem.embedders.openai import OpenAIEmbedder

        py_store = tmp_path / "py"
        embedder = OpenAIEmbedder(
            "nomic-embed-text", dimensions=48, base_url=fake.server.url + "/v1"
        )
        with RAGPipeline(py_store, embedder=embedder) as rag:
            rag.ingest_folder(folder)
        code, out, err = run(capsys, "search", "dogs", "--store", str(py_store), "--json")
        assert code == 0, err
        assert json.loads(out)[0]["metadata"]["source"].endswith("dogs.txt")
    finally:
        fake.server.stop()


def test_model_options_need_an_embedder(capsys, folder, tmp_path):  # noqa: F811
    code, _, err = run(capsys, "index", str(folder), "--store", str(tmp_path), "--model", "x")
    assert code == 1
    assert "--embedder" in err
