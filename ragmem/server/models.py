"""Request and response bodies of the REST API (the OpenAI-compatible ones are in openai.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ragmem.types import Metadata

__all__ = [
    "AddDocuments",
    "CollectionInfo",
    "CollectionList",
    "CreateCollection",
    "DeleteDocuments",
    "DocumentIn",
    "ErrorBody",
    "ErrorDetail",
    "HitOut",
    "IngestResult",
    "JobInfo",
    "SearchRequest",
    "SearchResult",
]

RetrieverName = Literal["hybrid", "rrf", "dense", "bm25"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    """An error in the OpenAI shape: a message, a type and an optional code."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """Every non-2xx answer: ``{"error": {...}}``, as the OpenAI API answers."""

    error: ErrorDetail


class CreateCollection(_Strict):
    """Create a collection (a no-op when it exists)."""

    name: str = Field(min_length=1, max_length=64, examples=["docs"])


class CollectionInfo(BaseModel):
    """A collection: its name, embedder and size."""

    name: str
    documents: int
    chunks: int
    embedder: str
    created: bool | None = None


class CollectionList(BaseModel):
    """The collections the caller may use."""

    collections: list[CollectionInfo]


class DocumentIn(_Strict):
    """A document to index; its id replaces any earlier document with the same id."""

    id: str = Field(min_length=1, max_length=512)
    text: str = Field(min_length=1)
    metadata: Metadata = Field(default_factory=dict)


class AddDocuments(_Strict):
    """Documents to index; ``background`` runs the work as a job and answers at once."""

    documents: list[DocumentIn] = Field(min_length=1)
    background: bool = False


class DeleteDocuments(_Strict):
    """Which documents to delete: by id, by metadata filter, or both."""

    ids: list[str] | None = None
    where: dict[str, Any] | None = None


class IngestResult(BaseModel):
    """What indexing did (``ragmem.ingest.IngestReport`` as JSON)."""

    added: list[str]
    updated: list[str]
    unchanged: list[str]
    skipped: list[dict[str, str]]
    failed: list[dict[str, str]]
    chunks_added: int
    chunks_deleted: int


class JobInfo(BaseModel):
    """A background ingest: its state and progress in documents."""

    id: str
    collection: str
    status: Literal["queued", "running", "done", "failed"]
    done: int
    total: int
    error: str | None = None
    result: IngestResult | None = None


class SearchRequest(_Strict):
    """A search over one collection."""

    query: str = Field(min_length=1, examples=["what does ragmem do?"])
    k: int = Field(default=5, ge=1, le=1000)
    where: dict[str, Any] | None = None
    min_score: float | None = None
    retriever: RetrieverName | None = None
    explain: bool = True


class HitOut(BaseModel):
    """One retrieved chunk: its document, span, text, score and how the score was made."""

    id: str
    doc_id: str | None
    source: str | None
    start: int | None
    end: int | None
    score: float
    text: str | None
    metadata: Metadata
    explain: dict[str, Any] | None = None


class SearchResult(BaseModel):
    """The hits of a search, best first."""

    hits: list[HitOut]
