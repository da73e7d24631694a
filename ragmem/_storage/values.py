"""Values in their stored form, checked before anything is written.

A write either lands whole or leaves no trace, so every value a write carries is
converted to what the database will hold (UTF-8 text, JSON metadata, float32 bytes)
before the transaction starts, and refused with ``InvalidInputError`` naming the field
when it cannot be: a lone surrogate has no UTF-8 form, and an integer beyond 64 bits
would overflow the numeric columns filters are evaluated on.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ragmem.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ragmem.types import Metadata

__all__ = ["check_text", "check_texts", "metadata_json"]

_INT64 = (-(2**63), 2**63 - 1)
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def check_text(value: str, field: str) -> str:
    """``value`` if it has a UTF-8 form (no lone surrogates), else InvalidInputError."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{field} holds a lone surrogate at position {exc.start}; text must be valid Unicode"
        ) from None
    return value


def check_texts(values: Sequence[str | None], field: str) -> None:
    """:func:`check_text` for each value (None allowed), naming ``field[i]``."""
    try:
        "".join(v for v in values if v is not None).encode("utf-8")
    except UnicodeEncodeError:
        # the joined check is one call; find the culprit only when there is one
        for i, value in enumerate(values):
            if value is not None:
                check_text(value, f"{field}[{i}]")


def metadata_json(metadata: Metadata, field: str) -> str:
    """Validated metadata (``types.validate_metadata``) as the JSON text to store.

    Raises:
        InvalidInputError: a key or string has no UTF-8 form, or an integer does not
            fit in 64 bits.
    """
    for value in metadata.values():
        for item in value if type(value) is list else (value,):
            if type(item) is int and not _INT64[0] <= item <= _INT64[1]:
                key = next(k for k, v in metadata.items() if v is value)
                raise InvalidInputError(
                    f"{field}[{key!r}] is an integer outside the 64-bit range; store it as a string"
                )
    text = _ENCODER.encode(metadata)
    try:
        text.encode("utf-8")  # one check of every key and string at once
    except UnicodeEncodeError:
        for key, value in metadata.items():
            check_text(key, f"{field} key {key!r}")
            for item in value if isinstance(value, list) else (value,):
                if type(item) is str:
                    check_text(item, f"{field}[{key!r}]")
        raise  # pragma: no cover - the loop above names the culprit
    return text
