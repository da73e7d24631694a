"""The ragmem command: index, search, ask, demo, and one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ragmem.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "notes"
    root.mkdir()
    (root / "cats.md").write_text("# Cats\n\nCats purr when they are content.", encoding="utf-8")
    (root / "dogs.txt").write_text("Dogs bark at the postman every morning.", encoding="utf-8")
    (root / "data.jsonl").write_text(
        '{"id": "r1", "text": "Parrots can mimic speech.", "year": 2024}\n', encoding="utf-8"
    )
    return root


def test_demo_runs_offline_and_shows_ranked_cited_sources(capsys):
    pytest.importorskip("onnxruntime", reason="the demo runs the local model: ragmem[local]")
    code, out, err = run(capsys, "demo", "--k", "2", "How do I install ragmem?")
    assert code == 0, err
    assert "ragmem demo: indexed" in out
    assert "Q: How do I install ragmem?" in out
    assert re.search(r"\n  \[1\] (README\.md|docs/[\w/-]+\.md):\d+(-\d+)?  score ", out)
    assert "  [2] " in out


def test_missing_store_is_one_line_and_exit_1(capsys, tmp_path):
    code, _, err = run(capsys, "search", "cats", "--store", str(tmp_path / "nowhere"))
    assert code == 1
    assert err.startswith("ragmem: error: no index at")
    assert err.count("\n") == 1


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["search"])
    assert exc.value.code == 2


def test_errors_never_show_a_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "ragmem.cli", "index", str(tmp_path / "missing"), "--store",
         str(tmp_path / "s")],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("ragmem: error: no such file or directory")


def test_index_search_and_reindex(capsys, folder, tmp_path):
    store = str(tmp_path / "index")
    code, out, _ = run(capsys, "index", str(folder), "--store", store, "--embedder", "hashing")
    assert code == 0
    assert out.startswith("3 added, 0 updated")

    code, out, _ = run(capsys, "search", "purring cats", "--store", store, "--k", "2", "--json")
    hits = json.loads(out)
    assert code == 0
    assert len(hits) == 2
    assert set(hits[0]) == {"id", "score", "text", "metadata"}
    assert hits[0]["metadata"]["source"] == (folder / "cats.md").as_posix()
    assert (
        hits[0]["text"]
        == (folder / "cats.md").read_text()[
            hits[0]["metadata"]["start"] : hits[0]["metadata"]["end"]
        ]
    )

    code, out, _ = run(capsys, "search", "parrots", "--store", store, "--where", '{"year": 2024}')
    assert code == 0
    assert "data.jsonl" in out
    assert "Parrots can mimic speech." in out

    code, out, _ = run(capsys, "index", str(folder), "--store", store, "--json")
    report = json.loads(out)
    assert (len(report["unchanged"]), report["embedded"]) == (3, 0)


def test_bad_where_is_one_line(capsys, folder, tmp_path):
    store = str(tmp_path / "index")
    run(capsys, "index", str(folder), "--store", store, "--embedder", "hashing")
    code, _, err = run(capsys, "search", "x", "--store", store, "--where", "{oops")
    assert code == 1
    assert err.startswith("ragmem: error: invalid filter")


def test_ask_without_a_model_prints_the_context(capsys, folder, tmp_path):
    store = str(tmp_path / "index")
    run(capsys, "index", str(folder), "--store", store, "--embedder", "hashing")
    code, out, _ = run(capsys, "ask", "Why do dogs bark?", "--store", store)
    assert code == 0
    assert "No LLM configured" in out
    assert "[1] " in out
    assert "Dogs bark at the postman" in out


def _all_hits(capsys, store: str) -> list[dict[str, Any]]:
    code, out, _ = run(capsys, "search", "the", "--store", store, "--k", "1000", "--json")
    assert code == 0
    hits: list[dict[str, Any]] = json.loads(out)
    return hits


def test_reindex_after_an_edit_changes_only_that_files_chunks(capsys, folder, tmp_path):
    store = str(tmp_path / "index")
    run(capsys, "index", str(folder), "--store", store, "--embedder", "hashing")
    before = {h["id"]: h["metadata"]["source"] for h in _all_hits(capsys, store)}

    cats = folder / "cats.md"
    cats.write_text("# Cats\n\nCats sleep for most of the day.", encoding="utf-8")
    code, out, _ = run(capsys, "index", str(folder), "--store", store, "--json")
    report = json.loads(out)
    assert code == 0
    assert report["updated"] == [cats.as_posix()]
    assert len(report["unchanged"]) == 2
    after = {h["id"]: h["metadata"]["source"] for h in _all_hits(capsys, store)}
    assert report["embedded"] == sum(1 for s in after.values() if s == cats.as_posix())
    unchanged = {i for i, s in before.items() if s != cats.as_posix()}
    assert unchanged == {i for i, s in after.items() if s != cats.as_posix()}
    assert not {i for i, s in before.items() if s == cats.as_posix()} & set(after)


def test_search_works_while_another_pipeline_holds_the_write_lock(capsys, folder, tmp_path):
    from ragmem import RAGPipeline

    store = str(tmp_path / "index")
    run(capsys, "index", str(folder), "--store", store, "--embedder", "hashing")
    with RAGPipeline(store):  # a writer keeps the lock
        code, out, err = run(capsys, "search", "dogs", "--store", store)
        assert code == 0, err
        assert "dogs.txt" in out
        code, _, err = run(capsys, "index", str(folder), "--store", store, "--embedder", "hashing")
        assert code == 1
        assert "locked" in err


def test_search_with_another_retriever_and_a_reranker(capsys, folder, tmp_path):
    pytest.importorskip("onnxruntime", reason="needs ragmem[local]")
    store = str(tmp_path / "index")
    assert main(["index", str(folder), "--store", store]) == 0  # the local model
    capsys.readouterr()
    argv = ["search", "Why do dogs bark?", "--store", store, "--json", "--k", "2"]
    for extra in (["--retriever", "bm25"], ["--rerank", "late-interaction"]):
        code, out, err = run(capsys, *argv, *extra)
        assert code == 0, err
        hits = json.loads(out)
        assert hits[0]["metadata"]["source"].endswith("dogs.txt")
    code, _, err = run(capsys, *argv, "--retriever", "nope")
    assert code == 1
    assert "unknown retriever 'nope'" in err
