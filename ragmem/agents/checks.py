"""Checks on what callers hand to Memory, run before anything is written.

A value the ledger or an index cannot hold must be refused up front: once a memory is in
the ledger its indexing is retried on every open, so one unstorable value (an infinite
timestamp, an integer wider than 64 bits, a lone surrogate) would fail every later write.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from ragmem.errors import InvalidInputError
from ragmem.types import Metadata

__all__ = [
    "check_k",
    "check_metadata_values",
    "check_text",
    "check_time",
    "check_timestamp",
    "check_ttl",
    "finite_number",
]

# what datetime can represent (years 1 to 9999), so every timestamp can be shown as a date
_EARLIEST, _LATEST = -62_135_596_800.0, 253_402_300_799.0
# a TTL beyond a thousand years is a mistake, and keeps now + ttl finite and exact enough
_LONGEST_TTL = 1000 * 365.25 * 86_400.0
_INT64 = 2**63


def finite_number(value: object, name: str) -> float:
    """``value`` as a finite float, or InvalidInputError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise InvalidInputError(f"{name} is too large: {value!r}") from None
    if not math.isfinite(number):
        raise InvalidInputError(f"{name} must be finite, got {value!r}")
    return number


def check_timestamp(value: object, name: str = "timestamp") -> float:
    """A Unix time in seconds that a date can represent (years 1 to 9999)."""
    number = finite_number(value, name)
    if not _EARLIEST <= number <= _LATEST:
        raise InvalidInputError(f"{name} must fall within the years 1 to 9999, got {value!r}")
    return number


def check_time(value: object, name: str) -> float:
    """A moment given as a datetime (naive means local time) or as Unix seconds."""
    if isinstance(value, datetime):
        return check_timestamp(value.timestamp(), name)
    return check_timestamp(value, name)


def check_ttl(value: object) -> float:
    """A time to live in seconds: positive and at most a thousand years."""
    number = finite_number(value, "ttl_seconds")
    if not 0 < number <= _LONGEST_TTL:
        raise InvalidInputError(
            f"ttl_seconds must be positive and at most {_LONGEST_TTL:.0f}, got {value!r}"
        )
    return number


def check_k(k: object) -> int:
    """A number of results: a positive int (bools refused)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")
    return k


def check_text(value: object, name: str) -> str:
    """A string that UTF-8 can encode (no lone surrogates)."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{name} is not valid Unicode text ({exc.reason})") from None
    return value


def _check_value(key: str, value: Any) -> None:
    if isinstance(value, str):
        check_text(value, f"metadata[{key!r}]")
    elif isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
        raise InvalidInputError(f"metadata[{key!r}] is an integer wider than 64 bits")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"metadata[{key!r}] must be finite, got {value!r}")


def check_metadata_values(metadata: Metadata) -> None:
    """Refuse metadata that the ledger or an index could not store exactly."""
    for key, value in metadata.items():
        check_text(key, "a metadata key")
        for item in value if isinstance(value, list) else [value]:
            _check_value(key, item)
