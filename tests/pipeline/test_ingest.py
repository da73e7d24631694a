"""Folder ingestion: loaders, incremental re-indexing, removed and unreadable files."""

from __future__ import annotations

import json
from importlib.util import find_spec

import pytest

from ragmem import HashingEmbedder, RAGPipeline
from ragmem.errors import CorruptIndexError, InvalidInputError
from ragmem.ingest import Manifest, UnreadableFileError, html_to_text, list_files, load_file
from tests.pipeline_helpers import CountingEmbedder, all_ids


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_text_markdown_and_rst_load_as_one_document(tmp_path):
    for name in ("a.txt", "b.md", "c.rst"):
        write(tmp_path / name, f"content of {name}")
        (doc,) = load_file(tmp_path / name, doc_id=name)
        assert (doc.id, doc.text, doc.metadata) == (name, f"content of {name}", {"source": name})


def test_html_becomes_visible_text():
    html = (
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<h1>Title</h1><p>One &amp; two</p><script>var x = 1;</script><p>Three</p></body></html>"
    )
    assert html_to_text(html) == "Title\n\nOne & two\n\nThree"


def test_json_and_jsonl_records(tmp_path):
    write(tmp_path / "one.json", json.dumps({"text": "solo", "year": 2024, "tags": ["x"]}))
    write(tmp_path / "many.json", json.dumps([{"id": "a", "text": "first"}, {"text": "second"}]))
    write(tmp_path / "lines.jsonl", '{"text": "l1", "id": 7}\n\n{"text": "l2", "score": 0.5}\n')
    (solo,) = load_file(tmp_path / "one.json", doc_id="one.json")
    assert (solo.id, solo.text, solo.metadata) == (
        "one.json:0",
        "solo",
        {"year": 2024, "tags": ["x"], "source": "one.json"},
    )
    many = load_file(tmp_path / "many.json", doc_id="m")
    assert [(d.id, d.text) for d in many] == [("m:a", "first"), ("m:1", "second")]
    lines = load_file(tmp_path / "lines.jsonl", doc_id="l")
    assert [(d.id, d.text, d.metadata.get("score")) for d in lines] == [
        ("l:7", "l1", None),
        ("l:1", "l2", 0.5),
    ]
    write(tmp_path / "custom.jsonl", '{"body": "b", "key": "k1"}\n')
    (custom,) = load_file(tmp_path / "custom.jsonl", doc_id="c", text_field="body", id_field="key")
    assert (custom.id, custom.text) == ("c:k1", "b")


def test_json_problems_are_unreadable_files(tmp_path):
    write(tmp_path / "bad.json", "{not json")
    write(tmp_path / "nofield.jsonl", '{"body": "x"}\n')
    write(tmp_path / "dupes.jsonl", '{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n')
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(UnreadableFileError, match="invalid JSON at line 1"):
        load_file(tmp_path / "bad.json", doc_id="bad")
    with pytest.raises(UnreadableFileError, match="no string field 'text'"):
        load_file(tmp_path / "nofield.jsonl", doc_id="n")
    with pytest.raises(UnreadableFileError, match="not UTF-8"):
        load_file(tmp_path / "latin1.txt", doc_id="l")
    with pytest.raises(UnreadableFileError, match="twice"):
        load_file(tmp_path / "dupes.jsonl", doc_id="d")


def _tiny_pdf(text: str) -> bytes:
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.mark.skipif(find_spec("pypdf") is None, reason="needs ragmem[pdf]")
def test_pdf_text_is_extracted(tmp_path):
    (tmp_path / "doc.pdf").write_bytes(_tiny_pdf("Hello from a PDF"))
    (doc,) = load_file(tmp_path / "doc.pdf", doc_id="doc.pdf")
    assert "Hello from a PDF" in doc.text
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    with pytest.raises(UnreadableFileError, match="cannot read PDF"):
        load_file(tmp_path / "broken.pdf", doc_id="broken.pdf")


def test_pdf_without_the_extra_names_it(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pypdf", None)
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(ImportError, match=r"ragmem\[pdf\]"):
        load_file(tmp_path / "doc.pdf", doc_id="doc.pdf")


def test_list_files_skips_hidden_and_reports_unsupported(tmp_path):
    write(tmp_path / "a.md", "a")
    write(tmp_path / "sub" / "b.TXT", "b")
    write(tmp_path / ".git" / "c.md", "hidden")
    write(tmp_path / ".hidden.md", "hidden")
    write(tmp_path / "image.png", "png")
    files, skipped = list_files(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.md", "sub/b.TXT"]
    assert [(p.path.endswith("image.png"), "'.png'" in p.reason) for p in skipped] == [(True, True)]
    with pytest.raises(InvalidInputError, match="no such file"):
        list_files(tmp_path / "missing")


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "docs"
    write(root / "guide.md", "# Guide\n\nInstall ragmem with pip. It runs offline.")
    write(root / "api" / "store.rst", "The store persists vectors atomically.")
    write(root / "faq.html", "<p>Is it fast?</p><p>Yes, it is fast.</p>")
    write(root / "notes.jsonl", '{"id": "n1", "text": "BM25 is incremental."}\n')
    (root / "logo.png").write_bytes(b"\x89PNG")
    return root


def test_incremental_folder_ingestion(corpus, tmp_path):
    embedder = CountingEmbedder()
    rag = RAGPipeline(embedder=embedder)
    report = rag.ingest_folder(corpus)
    assert len(report.added) == 4
    assert [p.path for p in report.skipped] == [(corpus / "logo.png").as_posix()]
    first = all_ids(rag.store)
    assert len(first) == report.chunks_added == len(embedder.embedded) == 4
    hit = rag.search("persists vectors", k=1)[0]
    assert hit.metadata["source"] == (corpus / "api" / "store.rst").as_posix()

    # unchanged: nothing embedded, nothing rewritten
    embedder.embedded.clear()
    report = rag.ingest_folder(corpus)
    assert embedder.embedded == []
    assert (len(report.unchanged), report.chunks_added, report.chunks_deleted) == (4, 0, 0)
    assert all_ids(rag.store) == first

    # one file edited: only its chunks change
    write(corpus / "guide.md", "# Guide\n\nInstall ragmem with pip and uv.")
    report = rag.ingest_folder(corpus)
    assert embedder.embedded == ["# Guide\n\nInstall ragmem with pip and uv."]
    assert report.updated == [(corpus / "guide.md").as_posix()]
    second = all_ids(rag.store)
    guide = (corpus / "guide.md").as_posix()
    assert {i for i in first if not i.startswith(guide)} == {
        i for i in second if not i.startswith(guide)
    }
    assert {i for i in first if i.startswith(guide)}.isdisjoint(second)

    # one file removed: its chunks go
    (corpus / "faq.html").unlink()
    report = rag.ingest_folder(corpus)
    assert report.removed == [(corpus / "faq.html").as_posix()]
    assert report.chunks_deleted == 1
    assert not any(i.startswith((corpus / "faq.html").as_posix()) for i in all_ids(rag.store))
    # the keyword index follows the vector store through every change
    assert len(rag.keyword) == rag.store.count()
    assert all(i in rag.keyword for i in all_ids(rag.store))


def test_an_unreadable_file_is_reported_and_keeps_its_old_chunks(corpus):
    rag = RAGPipeline(embedder=HashingEmbedder(dimensions=32))
    rag.ingest_folder(corpus)
    before = all_ids(rag.store)
    write(corpus / "notes.jsonl", "{broken\n")
    report = rag.ingest_folder(corpus)
    assert [p.path for p in report.failed] == [(corpus / "notes.jsonl").as_posix()]
    assert "invalid JSON" in report.failed[0].reason
    assert all_ids(rag.store) == before
    assert "1 unreadable" in report.summary()


def test_ingesting_a_subfolder_does_not_remove_its_siblings(corpus):
    rag = RAGPipeline(embedder=HashingEmbedder(dimensions=32))
    rag.ingest_folder(corpus)
    report = rag.ingest_folder(corpus / "api")
    assert (report.removed, report.unchanged) == ([], [(corpus / "api/store.rst").as_posix()])
    assert rag.store.count() == 4


def test_manifest_round_trip_and_corruption(tmp_path):
    path = tmp_path / "manifest.json"
    manifest = Manifest(path)
    manifest.entries["k"] = {"sha256": "x", "label": "k", "chunks": ["a", "b"]}
    manifest.save()
    assert Manifest(path).chunk_ids() == ["a", "b"]
    path.write_text("{trunc", encoding="utf-8")
    with pytest.raises(CorruptIndexError, match=r"manifest\.json"):
        Manifest(path)


def test_a_large_text_file_is_indexed_in_parts_that_map_back_to_the_file(tmp_path, monkeypatch):
    import ragmem.ingest

    monkeypatch.setattr(ragmem.ingest, "PART_CHARS", 1000)
    lines = [f"line {i}: the quick brown fox jumps over the lazy dog\n" for i in range(100)]
    text = "".join(lines)
    write(tmp_path / "big.txt", text)
    parts = load_file(tmp_path / "big.txt", doc_id="big.txt")
    assert len(parts) > 5
    assert all(len(p.text) <= 1000 for p in parts)
    assert "".join(p.text for p in parts) == text
    for part in parts:
        start = part.metadata["part_start"]
        assert text[start : start + len(part.text)] == part.text
        assert part.text.endswith("\n")  # cut at line ends
    rag = RAGPipeline(embedder=HashingEmbedder(dimensions=32))
    rag.ingest_folder(tmp_path)
    hit = rag.search("line 73", k=1)[0]
    start = hit.metadata["part_start"] + hit.metadata["start"]
    assert text[start : start + len(hit.text)] == hit.text
    assert rag.delete((tmp_path / "big.txt").as_posix()).removed
    assert rag.store.count() == 0
