"""Loading files into Documents for ingestion (``IngestReport`` and ``Manifest`` are re-exported).

Supported: ``.txt``, ``.md``/``.markdown``, ``.rst``, ``.html``/``.htm`` (converted to
text), source code (``CODE_SUFFIXES``: Python, JavaScript, TypeScript, Go, Rust, Java,
C/C++, C#, Ruby, PHP, Kotlin, Swift, shell), configuration as text (``.yaml``, ``.yml``,
``.toml``, ``.ini``, ``.cfg``), ``.json`` (an object or a list of objects with a text
field; any other JSON is indexed as text), ``.jsonl`` (one object per line), and ``.pdf``
with the ``ragmem[pdf]`` extra. Files are read as UTF-8; a file that cannot be read or
parsed is reported, never half-ingested; a bad record of a JSON file is reported with its
line (or position) and skipped. A text longer than ``PART_CHARS`` is split at line ends
into parts (``doc_id:partN``, with ``part_start`` in metadata), each chunked on its own;
``iter_documents`` reads a large text file one part at a time. Folders are walked without
following symlinks that lead outside them (unless asked), and only regular files are
read: a FIFO named ``notes.txt`` is reported, not opened.
"""

from __future__ import annotations

import codecs
import hashlib
import itertools
import json
import math
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragmem.errors import InvalidInputError, MissingDependencyError
from ragmem.htmltext import html_to_text
from ragmem.manifest import FileProblem, IngestReport, Manifest
from ragmem.types import Document

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import TextIO

__all__ = [
    "CODE_SUFFIXES",
    "CONFIG_SUFFIXES",
    "MARKDOWN_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "FileProblem",
    "IngestReport",
    "Manifest",
    "UnreadableFileError",
    "file_sha256",
    "html_to_text",
    "iter_documents",
    "list_files",
    "load_file",
]

# suffix -> language name for CodeChunker
CODE_SUFFIXES: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".tsx": "typescript", ".go": "go",
    ".rs": "rust", ".java": "java", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp",
    ".hpp": "cpp", ".cs": "csharp", ".rb": "ruby", ".php": "php", ".kt": "kotlin",
    ".swift": "swift", ".sh": "shell",
}  # fmt: skip
MARKDOWN_SUFFIXES = (".md", ".markdown")
CONFIG_SUFFIXES = (".yaml", ".yml", ".toml", ".ini", ".cfg")
SUPPORTED_SUFFIXES = tuple(
    sorted(
        {".htm", ".html", ".json", ".jsonl", ".pdf", ".rst", ".txt"}
        | set(MARKDOWN_SUFFIXES)
        | set(CONFIG_SUFFIXES)
        | set(CODE_SUFFIXES)
    )
)
# problems listed per file before the rest are only counted
_LISTED_PROBLEMS = 3
PART_CHARS = 1 << 20
"""A text file longer than this (in characters) is indexed as parts of at most this size."""
# files that must be parsed whole (their text is not a slice of the file's text)
_WHOLE_SUFFIXES = frozenset({".pdf", ".json", ".jsonl", ".html", ".htm"})


class UnreadableFileError(InvalidInputError):
    """A file could not be decoded or parsed; the message says which and why.

    Attributes:
        path: the file.
        reason: why, without the path (as reports list it under the file).
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_files(
    root: Path, *, follow_symlinks: bool = False
) -> tuple[list[Path], list[FileProblem]]:
    """Files under ``root`` (or ``root`` itself) that can be loaded, sorted; and those skipped.

    Hidden files and directories (a name starting with ``.``) are not visited. A
    symlink is followed only when it leads inside ``root``, or with ``follow_symlinks``;
    anything but a regular file (FIFO, socket, device, broken link) is skipped.
    """
    if root.is_file():
        candidates = [root]
    elif root.is_dir():
        candidates = []
        seen_dirs: set[Path] = set()
        for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_symlinks):
            real = Path(dirpath).resolve()
            if real in seen_dirs:  # a symlink cycle
                dirnames[:] = []
                continue
            seen_dirs.add(real)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            candidates += [Path(dirpath, f) for f in filenames if not f.startswith(".")]
    else:
        raise InvalidInputError(f"path: no such file or directory: {root}")
    inside = root.resolve()
    files, skipped = [], []
    for path in sorted(candidates):
        problem = _unreadable_kind(path, inside, follow_symlinks)
        if problem is not None:
            skipped.append(FileProblem(path=str(path), reason=problem))
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            files.append(path)
        else:
            skipped.append(FileProblem(path=str(path), reason=f"unsupported type {path.suffix!r}"))
    return files, skipped


def _unreadable_kind(path: Path, root: Path, follow_symlinks: bool) -> str | None:
    """Why ``path`` is not read as a file, or None when it is."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return "broken symlink" if path.is_symlink() else "cannot stat the file"
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, socket or device)"
    if not follow_symlinks and root.is_dir():
        target = path.resolve()
        if target != root and root not in target.parents:
            return "symlink to a file outside the indexed folder (follow with --follow-symlinks)"
    return None


def load_file(
    path: Path,
    *,
    doc_id: str,
    text_field: str = "text",
    id_field: str = "id",
    problems: list[FileProblem] | None = None,
) -> list[Document]:
    """The documents in one file; ``doc_id`` names the file (records get ``doc_id:N``).

    Every document's metadata holds ``source`` (= ``doc_id``); source code also holds
    ``path`` and ``language`` (for ``CodeChunker``); JSON records keep their other
    scalar and list-of-scalar fields. Records that cannot be used (invalid JSON on a
    line, no text field) are skipped and described, once for the file, in ``problems``
    (when given; otherwise the first one raises).

    Raises:
        UnreadableFileError: the file is not UTF-8, or not the JSON it claims to be.
        MissingDependencyError: a PDF was given without ``ragmem[pdf]`` installed.
    """
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        text = _read_pdf(path)
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UnreadableFileError(path, f"not UTF-8 text ({exc.reason})") from exc
        except OSError as exc:
            raise UnreadableFileError(path, str(exc.strerror or exc)) from exc
    if suffix in (".json", ".jsonl"):
        issues: list[str] = []
        documents = _json_documents(
            path, text, doc_id, text_field, id_field, lines=suffix == ".jsonl", issues=issues
        )
        if issues:
            if problems is None or not documents:
                # nothing usable at all: the file is unreadable (and keeps its old chunks)
                raise UnreadableFileError(path, "; ".join(issues[:_LISTED_PROBLEMS]))
            problems.append(FileProblem(path=doc_id, reason=_summarise(issues)))
        if documents is not None:
            return documents
    if suffix in (".html", ".htm"):
        text = html_to_text(text)
    if not text.strip():
        return []
    metadata = _text_metadata(suffix, doc_id)
    if len(text) <= PART_CHARS:
        return [Document(id=doc_id, text=text, metadata=metadata)]
    # a large file becomes parts, so chunking (and a tokenizer's offsets) never holds
    # more than one part; ``part_start`` maps a chunk's offsets back into the file
    return [
        Document(id=f"{doc_id}:part{n}", text=part, metadata={**metadata, "part_start": start})
        for n, (start, part) in enumerate(_parts(text, PART_CHARS))
    ]


def iter_documents(
    path: Path,
    *,
    doc_id: str,
    text_field: str = "text",
    id_field: str = "id",
    problems: list[FileProblem] | None = None,
) -> Iterator[Document]:
    """The documents of ``load_file``, read as they are needed.

    A text file (Markdown, code, configuration, plain text) larger than ``PART_CHARS``
    is streamed: its parts are read one at a time, so memory holds one part however
    large the file. The file is checked to be UTF-8 before the first part is yielded,
    so an undecodable file fails before anything of it is indexed. Other files are
    loaded whole by ``load_file``.

    Raises:
        UnreadableFileError: as ``load_file``, before the first document.
    """
    suffix = path.suffix.lower()
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnreadableFileError(path, str(exc.strerror or exc)) from exc
    if suffix in _WHOLE_SUFFIXES or size <= PART_CHARS:
        yield from load_file(
            path, doc_id=doc_id, text_field=text_field, id_field=id_field, problems=problems
        )
        return
    _check_utf8(path)
    metadata = _text_metadata(suffix, doc_id)
    try:
        with path.open(encoding="utf-8") as fh:
            parts = _stream_parts(fh, PART_CHARS)
            first = next(parts, None)
            if first is None:
                return
            second = next(parts, None)
            if second is None:  # fewer characters than bytes: one document, as load_file
                if first[1].strip():
                    yield Document(id=doc_id, text=first[1], metadata=metadata)
                return
            for n, (start, part) in enumerate(itertools.chain([first, second], parts)):
                part_metadata = {**metadata, "part_start": start}
                yield Document(id=f"{doc_id}:part{n}", text=part, metadata=part_metadata)
    except UnicodeDecodeError as exc:  # the file changed since it was checked
        raise UnreadableFileError(path, f"not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise UnreadableFileError(path, str(exc.strerror or exc)) from exc


def _check_utf8(path: Path) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(path, f"not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise UnreadableFileError(path, str(exc.strerror or exc)) from exc


def _text_metadata(suffix: str, doc_id: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"source": doc_id}
    if suffix in CODE_SUFFIXES:
        metadata.update(path=doc_id, language=CODE_SUFFIXES[suffix])
    return metadata


def _stream_parts(fh: TextIO, size: int) -> Iterator[tuple[int, str]]:
    """``_parts`` of the text read from ``fh``, holding at most one part and a tail."""
    buffer = ""
    start = 0
    while True:
        # one character beyond a part tells whether the text ends here
        buffer += fh.read(size + 1 - len(buffer))
        if len(buffer) <= size:
            if buffer:
                yield start, buffer
            return
        newline = buffer.rfind("\n", size // 2, size)
        end = newline + 1 if newline >= 0 else size
        yield start, buffer[:end]
        buffer = buffer[end:]
        start += end


def _parts(text: str, size: int) -> list[tuple[int, str]]:
    """``text`` cut into pieces of at most ``size`` characters, at a line end when possible."""
    parts = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            newline = text.rfind("\n", start + size // 2, end)
            end = newline + 1 if newline >= 0 else end
        parts.append((start, text[start:end]))
        start = end
    return parts


def _summarise(issues: list[str]) -> str:
    listed = "; ".join(issues[:_LISTED_PROBLEMS])
    more = len(issues) - _LISTED_PROBLEMS
    count = f"{len(issues)} record{'s' if len(issues) > 1 else ''} skipped: "
    return count + listed + (f"; and {more} more" if more > 0 else "")


def _json_records(text: str, *, lines: bool, issues: list[str]) -> list[tuple[str, Any]] | None:
    """(where, record) pairs; None for a .json file that is not JSON at all."""
    if not lines:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UnreadableFileError("", f"invalid JSON at line {exc.lineno}: {exc.msg}") from exc
        items = data if isinstance(data, list) else [data]
        return [(f"record {n}", item) for n, item in enumerate(items)]
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((f"line {number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            issues.append(f"line {number}: invalid JSON ({exc.msg})")
    return records


def _json_documents(
    path: Path,
    text: str,
    doc_id: str,
    text_field: str,
    id_field: str,
    *,
    lines: bool,
    issues: list[str],
) -> list[Document] | None:
    """Documents of a JSON or JSONL file; None for JSON holding no records (index as text)."""
    try:
        records = _json_records(text, lines=lines, issues=issues)
    except UnreadableFileError as exc:
        raise UnreadableFileError(path, exc.reason) from exc.__cause__
    assert records is not None
    usable = [
        r for r in records if isinstance(r[1], dict) and isinstance(r[1].get(text_field), str)
    ]
    if not lines and not usable:
        return None  # configuration or data without a text field: its text is the document
    documents = []
    seen: set[str] = set()
    for n, (where, record) in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            issues.append(f"{where}: no string field {text_field!r}")
            continue
        if not record[text_field].strip():
            continue
        key = record.get(id_field)
        record_id = f"{doc_id}:{key if isinstance(key, (str, int)) and key != '' else n}"
        if record_id in seen:
            issues.append(f"{where}: record id {record_id!r} appears twice")
            continue
        seen.add(record_id)
        metadata: dict[str, Any] = {
            k: v
            for k, v in record.items()
            if k != text_field and k and not k.startswith("$") and _is_value(v)
        }
        metadata["source"] = doc_id
        documents.append(Document(id=record_id, text=record[text_field], metadata=metadata))
    return documents


def _is_scalar(value: object) -> bool:
    # NaN is not stored; ints beyond 64 bits are not either (stores keep them as numbers)
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**64
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, bool))


def _is_value(value: object) -> bool:
    """A metadata value a record may keep: a scalar, or a list of scalars (``tags``)."""
    if isinstance(value, list):
        return all(_is_scalar(v) for v in value)
    return _is_scalar(value)


def _read_pdf(path: Path) -> str:
    try:
        import pypdf
    except ImportError as exc:
        raise MissingDependencyError(package="pypdf", extra="pdf") from exc
    try:
        reader = pypdf.PdfReader(str(path))
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except Exception as exc:  # pypdf raises many unrelated types on damaged files
        raise UnreadableFileError(path, f"cannot read PDF ({exc})") from exc
