"""Folder ingestion of a real project folder: chunkers per type, metadata, odd files, progress."""

import json
import os

import pytest

from ragmem import HashingEmbedder, InvalidInputError, RAGPipeline
from ragmem.pipeline.progress import Progress


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    write(root / "README.md", "# Tool\n\nIntro text.\n\n## Install\n\nRun pip install tool.\n")
    write(root / "src" / "app.py", "import os\n\n\ndef restore_backup(path):\n    return path\n")
    write(root / "src" / "util.ts", "export function parseDate(s: string) {\n  return s;\n}\n")
    write(root / "src" / "main.go", "package main\n\nfunc main() {\n}\n")
    write(root / "config" / "settings.yaml", "database:\n  host: localhost\n  port: 5432\n")
    write(root / "config" / "tool.toml", "[tool]\nname = 'x'\n")
    write(root / "config" / "package.json", json.dumps({"name": "tool", "version": "1.0"}))
    write(
        root / "data" / "notes.jsonl",
        '{"text": "first note", "tags": ["a", "b"]}\n{broken\n{"text": "third", "tags": []}\n'
        '{"no_text": 1}\n',
    )
    return root


def make(**kwargs):
    return RAGPipeline(embedder=HashingEmbedder(dimensions=32), **kwargs)


def chunks_of(rag, suffix=""):
    records = rag.store.get(rag.manifest.chunk_ids())
    return [r for r in records if r.metadata["doc_id"].split(":")[0].endswith(suffix)]


def test_each_file_type_gets_its_chunker_and_run_metadata(project):
    rag = make()
    report = rag.ingest_folder(project, metadata={"tenant": "acme", "acl": ["eng"]})
    assert not report.skipped
    labels = {p.rsplit("/", 1)[-1] for p in report.added}
    assert labels == {
        "README.md", "app.py", "util.ts", "main.go", "settings.yaml", "tool.toml",
        "package.json", "notes.jsonl",
    }  # fmt: skip
    (readme,) = chunks_of(rag, "README.md")
    assert readme.metadata["headings"] == ["Tool"]
    (py,) = chunks_of(rag, "app.py")
    assert py.metadata["language"] == "python"
    assert "restore_backup" in py.metadata["symbols"]
    (ts,) = chunks_of(rag, "util.ts")
    assert ts.metadata["language"] == "typescript"
    assert "symbols" in ts.metadata
    for record in chunks_of(rag):
        assert record.metadata["tenant"] == "acme"
        assert record.metadata["acl"] == ["eng"]
    notes = chunks_of(rag, "notes.jsonl")
    assert sorted(h.metadata["tags"] for h in notes) == [[], ["a", "b"]]
    # the bad records are reported once for the file, by line, without repeating the path
    (problem,) = report.failed
    assert problem.path.endswith("notes.jsonl")
    assert "line 2: invalid JSON" in problem.reason
    assert "line 4: no string field" in problem.reason
    assert "notes.jsonl" not in problem.reason
    # changing the run's metadata re-indexes (it is part of what was ingested)
    assert len(rag.ingest_folder(project, metadata={"tenant": "other"}).updated) == 8
    with pytest.raises(InvalidInputError, match="metadata"):
        rag.ingest_folder(project, metadata={"bad": None})


def test_fifos_are_skipped_and_symlinks_stay_inside_unless_followed(project, tmp_path):
    os.mkfifo(project / "pipe.txt")
    outside = tmp_path / "secret.txt"
    write(outside, "outside the folder")
    (project / "link.txt").symlink_to(outside)
    (project / "inner.txt").symlink_to(project / "README.md")
    report = make().ingest_folder(project)  # returns: the FIFO is never opened
    reasons = {p.path.rsplit("/", 1)[-1]: p.reason for p in report.skipped}
    assert "regular file" in reasons["pipe.txt"]
    assert "outside the indexed folder" in reasons["link.txt"]
    assert reasons["inner.txt"].startswith("same file as")
    assert reasons["inner.txt"].endswith("README.md")
    followed = make().ingest_folder(project, follow_symlinks=True)
    assert any(p.endswith("link.txt") for p in followed.added)


def test_progress_covers_chunking_and_indexing(project):
    events: list[Progress] = []
    make().ingest_folder(project, progress=events.append)
    stages = [e.stage for e in events]
    assert stages[0] == "chunking"
    assert stages[-1] == "indexing"
    last = events[-1]
    assert last.done == last.total > 0
    assert last.unit == "chunks"
    assert last.eta == 0
    assert last.rate >= 0
    assert "chunks/s" in last.line()
    assert "ETA" in last.line()
