"""What an ingestion did (``IngestReport``) and what has been ingested (``Manifest``).

The manifest makes folder and document ingestion incremental: it maps each source
(a file or a document) to its content hash and chunk ids, and lists chunk ids whose
removal a crash may have interrupted.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ragmem.errors import CorruptIndexError

__all__ = ["FileProblem", "IngestReport", "Manifest"]


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


class Manifest:
    """What has been ingested: for each source key, its content hash and chunk ids.

    Stored as JSON beside the index and replaced atomically (write, fsync, rename).
    """

    VERSION = 1

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        # chunk ids of deleted sources not yet confirmed gone from the store and BM25
        self.deleting: list[str] = []
        if path is not None and path.exists():
            self.entries, self.deleting = self._read(path)

    @staticmethod
    def _read(path: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CorruptIndexError(path, f"unreadable manifest ({exc})") from exc
        if not isinstance(data, dict) or data.get("version") != Manifest.VERSION:
            raise CorruptIndexError(path, "not a ragmem manifest of a known version")
        entries = data.get("entries")
        deleting = data.get("deleting", [])
        if not isinstance(entries, dict) or not isinstance(deleting, list):
            raise CorruptIndexError(path, "manifest has no entries")
        return entries, deleting

    def chunk_ids(self) -> list[str]:
        """Every chunk id the manifest knows, in ingestion order."""
        return [cid for entry in self.entries.values() for cid in entry["chunks"]]

    def save(self) -> None:
        """Write the manifest atomically (no-op for an in-memory manifest)."""
        if self.path is None:
            return
        state: dict[str, Any] = {"version": self.VERSION, "entries": self.entries}
        if self.deleting:
            state["deleting"] = self.deleting
        payload = json.dumps(state, sort_keys=True)
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
