"""Loading files into Documents, and the manifest that makes folder ingestion incremental.

Supported: ``.txt``, ``.md``/``.markdown``, ``.rst``, ``.html``/``.htm`` (converted to
text), ``.json`` (an object or a list of objects with a text field), ``.jsonl`` (one
object per line), and ``.pdf`` with the ``ragmem[pdf]`` extra. Files are read as UTF-8;
a file that cannot be read or parsed is reported, never half-ingested.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ragmem.errors import CorruptIndexError, InvalidInputError, MissingDependencyError
from ragmem.types import Document

__all__ = [
    "SUPPORTED_SUFFIXES",
    "FileProblem",
    "IngestReport",
    "Manifest",
    "UnreadableFileError",
    "file_sha256",
    "list_files",
    "load_file",
]

SUPPORTED_SUFFIXES = (
    ".htm",
    ".html",
    ".json",
    ".jsonl",
    ".markdown",
    ".md",
    ".pdf",
    ".rst",
    ".txt",
)


class UnreadableFileError(InvalidInputError):
    """A file could not be decoded or parsed; the message says why."""


class FileProblem(BaseModel):
    """A file that was skipped or could not be read, and why."""

    path: str
    reason: str


class IngestReport(BaseModel):
    """What one ingestion did, file by file (paths as given) and in chunk counts."""

    added: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    skipped: list[FileProblem] = Field(default_factory=list)
    failed: list[FileProblem] = Field(default_factory=list)
    chunks_added: int = 0
    chunks_deleted: int = 0
    embedded: int = 0

    def summary(self) -> str:
        """One line for people, e.g. ``3 added, 1 updated, 0 removed, 12 unchanged ...``."""
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged, {len(self.skipped)} skipped, "
            f"{len(self.failed)} unreadable; {self.chunks_added} chunks written, "
            f"{self.chunks_deleted} deleted, {self.embedded} texts embedded"
        )


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_files(root: Path) -> tuple[list[Path], list[FileProblem]]:
    """Files under ``root`` (or ``root`` itself) that can be loaded, sorted; and those skipped.

    Hidden files and directories (a name starting with ``.``) are not visited.
    """
    if root.is_file():
        candidates = [root]
    elif root.is_dir():
        candidates = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            candidates += [Path(dirpath, f) for f in filenames if not f.startswith(".")]
    else:
        raise InvalidInputError(f"no such file or directory: {root}")
    files, skipped = [], []
    for path in sorted(candidates):
        if path.suffix.lower() in SUPPORTED_SUFFIXES:
            files.append(path)
        else:
            skipped.append(FileProblem(path=str(path), reason=f"unsupported type {path.suffix!r}"))
    return files, skipped


def load_file(
    path: Path, *, doc_id: str, text_field: str = "text", id_field: str = "id"
) -> list[Document]:
    """The documents in one file; ``doc_id`` names the file (records get ``doc_id:N``).

    Every document's metadata holds ``source`` (= ``doc_id``); JSON records also keep
    their other scalar fields.

    Raises:
        UnreadableFileError: the file is not UTF-8, or not the JSON it claims to be, or
            a record has no text field.
        MissingDependencyError: a PDF was given without ``ragmem[pdf]`` installed.
    """
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        text = _read_pdf(path)
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UnreadableFileError(f"{path}: not UTF-8 text ({exc.reason})") from exc
        except OSError as exc:
            raise UnreadableFileError(f"{path}: {exc.strerror or exc}") from exc
    if suffix in (".json", ".jsonl"):
        return _json_documents(path, text, doc_id, text_field, id_field, lines=suffix == ".jsonl")
    if suffix in (".html", ".htm"):
        text = html_to_text(text)
    if not text.strip():
        return []
    return [Document(id=doc_id, text=text, metadata={"source": doc_id})]


def _json_documents(
    path: Path, text: str, doc_id: str, text_field: str, id_field: str, *, lines: bool
) -> list[Document]:
    records: list[Any] = []
    try:
        if lines:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
            records = data if isinstance(data, list) else [data]
    except json.JSONDecodeError as exc:
        raise UnreadableFileError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    documents = []
    seen: set[str] = set()
    for n, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            raise UnreadableFileError(f"{path}: record {n} has no string field {text_field!r}")
        if not record[text_field].strip():
            continue
        key = record.get(id_field)
        record_id = f"{doc_id}:{key if isinstance(key, (str, int)) and key != '' else n}"
        metadata: dict[str, Any] = {
            k: v
            for k, v in record.items()
            if k != text_field and k and not k.startswith("$") and _is_scalar(v)
        }
        metadata["source"] = doc_id
        if record_id in seen:
            raise UnreadableFileError(f"{path}: record id {record_id!r} appears twice")
        seen.add(record_id)
        documents.append(Document(id=record_id, text=record[text_field], metadata=metadata))
    return documents


def _is_scalar(value: object) -> bool:
    return isinstance(value, (str, int, float, bool)) and value == value  # NaN is not stored


def _read_pdf(path: Path) -> str:
    try:
        import pypdf
    except ImportError as exc:
        raise MissingDependencyError(package="pypdf", extra="pdf") from exc
    try:
        reader = pypdf.PdfReader(str(path))
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except Exception as exc:  # pypdf raises many unrelated types on damaged files
        raise UnreadableFileError(f"{path}: cannot read PDF ({exc})") from exc


class _TextExtractor(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "template", "noscript"})
    _BLOCK = frozenset(
        {"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "pre",
         "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "header", "footer", "hr", "title"}
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML page: scripts and styles dropped, blocks on their own lines."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    paragraphs: list[str] = []
    blank = True
    for line in lines:
        if line:
            paragraphs.append(line)
            blank = False
        elif not blank:
            paragraphs.append("")
            blank = True
    return "\n".join(paragraphs).strip()


class Manifest:
    """What has been ingested: for each source key, its content hash and chunk ids.

    Stored as JSON beside the index and replaced atomically (write, fsync, rename).
    """

    VERSION = 1

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            self.entries = self._read(path)

    @staticmethod
    def _read(path: Path) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CorruptIndexError(path, f"unreadable manifest ({exc})") from exc
        if not isinstance(data, dict) or data.get("version") != Manifest.VERSION:
            raise CorruptIndexError(path, "not a ragmem manifest of a known version")
        entries = data.get("entries")
        if not isinstance(entries, dict):
            raise CorruptIndexError(path, "manifest has no entries")
        return entries

    def chunk_ids(self) -> list[str]:
        """Every chunk id the manifest knows, in ingestion order."""
        return [cid for entry in self.entries.values() for cid in entry["chunks"]]

    def save(self) -> None:
        """Write the manifest atomically (no-op for an in-memory manifest)."""
        if self.path is None:
            return
        payload = json.dumps({"version": self.VERSION, "entries": self.entries}, sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".manifest-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
