"""Scopes (user, agent, session) and the metadata memory keeps in its indexes.

A search is confined to its scope by a filter that the store and BM25 apply before
top-k, so one user's memories can never surface in another user's results.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ragmem.agents.checks import check_text
from ragmem.agents.records import MemoryItem
from ragmem.errors import InvalidInputError
from ragmem.filters import And, F, Filter
from ragmem.types import Metadata

__all__ = [
    "RESERVED",
    "SCOPES",
    "STATUS",
    "TIME",
    "VALID_TO",
    "check_scope",
    "content_hash",
    "index_metadata",
    "public_metadata",
    "scope_filter",
    "scope_sql",
]

SCOPES = ("user_id", "agent_id", "session_id")
STATUS, TIME, EXPIRES, KEY, DIGEST = "_status", "_time", "_expires", "_key", "_sha256"
VALID_TO = "_valid_to"
RESERVED = frozenset({*SCOPES, STATUS, TIME, EXPIRES, KEY, DIGEST, VALID_TO})


def content_hash(text: str) -> str:
    """Hash of a memory's text after whitespace and case folding (exact-duplicate test)."""
    return hashlib.sha256(" ".join(text.split()).casefold().encode()).hexdigest()


def check_scope(
    user_id: str | None, agent_id: str | None, session_id: str | None, *, require: bool
) -> dict[str, str]:
    """The given scope ids by name; ``require`` demands at least one."""
    scope = {
        name: value
        for name, value in zip(SCOPES, (user_id, agent_id, session_id))
        if value is not None
    }
    for name, value in scope.items():
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"{name} must be a non-empty string, got {value!r}")
        check_text(value, name)
    if require and not scope:
        raise InvalidInputError("give at least one of user_id, agent_id or session_id")
    return scope


def check_metadata_keys(metadata: Metadata) -> None:
    clash = sorted(RESERVED & metadata.keys())
    if clash:
        raise InvalidInputError(f"metadata keys {clash} are reserved by Memory")


def scope_filter(scope: dict[str, str], *, exact: bool) -> Filter:
    """Index filter for a scope; ``exact`` also requires the unnamed scopes to be absent
    and the memory to be active (the test for duplicates)."""
    parts: list[Filter] = [F(name) == value for name, value in scope.items()]
    if exact:
        parts += [~F(name).exists() for name in SCOPES if name not in scope]
        parts.append(F(STATUS) == "active")
    return parts[0] if len(parts) == 1 else And(filters=tuple(parts))


def scope_sql(scope: dict[str, str], *, exact: bool = False) -> tuple[str, list[Any]]:
    """SQL condition for a scope; ``exact`` also requires the unnamed scopes to be absent."""
    parts = [f"{name} = ?" for name in scope]
    if exact:
        parts += [f"{name} IS NULL" for name in SCOPES if name not in scope]
    return (" AND ".join(parts) or "1 = 1"), list(scope.values())


def index_metadata(item: MemoryItem) -> Metadata:
    """What the vector store and BM25 keep for a memory: user metadata, scope, lifecycle."""
    # the exact text's digest tells whether a stored vector is current; the store never
    # holds the text itself, so a purge need not trust it to erase text bytes
    digest = hashlib.sha256(item.text.encode()).hexdigest()
    meta: Metadata = {**item.metadata, STATUS: item.status, TIME: item.timestamp, DIGEST: digest}
    for name in SCOPES:
        value = getattr(item, name)
        if value is not None:
            meta[name] = value
    if item.expires_at is not None:
        meta[EXPIRES] = item.expires_at
    if item.key is not None:
        meta[KEY] = item.key
    if item.valid_to is not None:
        meta[VALID_TO] = item.valid_to
    return meta


def public_metadata(item: MemoryItem) -> Metadata:
    """What a search hit shows: user metadata, scope, ``observed_at`` (also as
    ``timestamp``) and ``valid_to`` once the memory stopped being current."""
    meta: Metadata = dict(item.metadata)
    for name in SCOPES:
        value = getattr(item, name)
        if value is not None:
            meta[name] = value
    meta["timestamp"] = meta["observed_at"] = item.timestamp
    if item.valid_to is not None:
        meta["valid_to"] = item.valid_to
    return meta
