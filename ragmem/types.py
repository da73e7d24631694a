"""The data types users pass in and get back: Document, Chunk, Hit, Record.

Vectors never live in these models one per item on hot paths: they travel as
``numpy.ndarray`` float32 of shape (n, d) (the ``Vectors`` alias).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ragmem.errors import InvalidInputError

__all__ = [
    "Chunk",
    "Document",
    "Hit",
    "Metadata",
    "MetadataValue",
    "Metric",
    "Purpose",
    "Record",
    "Scalar",
    "Vectors",
    "validate_metadata",
]

Vectors = npt.NDArray[np.float32]
"""A float32 array of shape (n, d): one row per text or item."""

Purpose = Literal["document", "query"]
Metric = Literal["cosine", "dot", "l2"]

Scalar = str | int | float | bool
MetadataValue = Scalar | list[Scalar]
Metadata = dict[str, MetadataValue]
"""Flat metadata: string keys; values are scalars or lists of scalars (never None)."""


# defer_build: every model builds its validator on first use rather than at import,
# which keeps ``import ragmem`` fast; fields and behaviour are the same.


class Document(BaseModel):
    """A source text with an id and metadata, before chunking.

    Example:
        >>> Document(id="readme", text="ragmem is small.", metadata={"lang": "en"}).id
        'readme'
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    text: str
    metadata: Metadata = Field(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:  # users build Documents: keep errors in ragmem's tree
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"]) or "Document"
            raise InvalidInputError(f"Document {field}: {error['msg']}") from None


class Chunk(BaseModel):
    """A piece of a document: ``text == document.text[start:end]``.

    Example:
        >>> Chunk(id="d#0", doc_id="d", text="ab", start=0, end=2, index=0).end
        2
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    doc_id: str
    text: str
    start: int
    end: int
    index: int
    metadata: Metadata = Field(default_factory=dict)


class Hit(BaseModel):
    """One search result. Higher ``score`` is better on every backend.

    ``explain`` records how the score was made (per-retriever ranks and scores,
    rerank scores, recency boosts) so fusion and reranking can be inspected.

    Example:
        >>> Hit(id="a", score=0.9, text="hello").score
        0.9
    """

    model_config = ConfigDict(defer_build=True)

    id: str
    score: float
    text: str | None = None
    metadata: Metadata = Field(default_factory=dict)
    explain: dict[str, Any] = Field(default_factory=dict)


class Record(BaseModel):
    """A stored item as returned by ``VectorStore.get``.

    Example:
        >>> import numpy as np
        >>> Record(id="a", vector=np.zeros(3, np.float32)).vector.shape
        (3,)
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, defer_build=True)

    id: str
    vector: npt.NDArray[np.float32]
    text: str | None = None
    metadata: Metadata = Field(default_factory=dict)


def _check_scalar(key: str, value: object) -> Scalar:
    if isinstance(value, np.generic):
        value = value.item()  # numpy scalars become the Python value they hold
    if value is None:
        raise InvalidInputError(
            f"metadata {key!r} is None; omit the key instead (None is not a storable value)"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"metadata {key!r} is {value}; only finite numbers are stored")
    if not isinstance(value, (str, int, float, bool)):
        raise InvalidInputError(
            f"metadata {key!r} has type {type(value).__name__}; "
            "values are str, int, float, bool or a list of those"
        )
    return value


def validate_metadata(metadata: object) -> Metadata:
    """Check one metadata dict and return a plain copy (numpy scalars become Python values).

    Raises:
        InvalidInputError: a key is not a non-empty string, a value is None, NaN,
            nested, or of an unsupported type.
    """
    if not isinstance(metadata, dict):
        raise InvalidInputError(f"metadata must be a dict, got {type(metadata).__name__}")
    clean: Metadata = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"metadata keys must be non-empty strings, got {key!r}")
        if key.startswith("$"):
            raise InvalidInputError(f"metadata key {key!r} may not start with '$'")
        if isinstance(value, (list, tuple)):
            clean[key] = [_check_scalar(key, item) for item in value]
        else:
            clean[key] = _check_scalar(key, value)
    return clean
