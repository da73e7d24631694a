"""Whom a tool call acts for, and which names may become folders of the store."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ragmem.errors import ConfigurationError

__all__ = ["Principal", "valid_name"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Principal:
    """Whom a tool call acts for: its memory scope and what it may touch.

    Args:
        user_id: every memory read or written belongs to this user.
        tenant: whose memory folder (``_memory/TENANT``) the user lives in.
        agent_id: when set, memories are also confined to this agent.
        collections: the document collections it may use (None: all of them).
        can_write: whether it may add, change or remove anything.

    Example:
        >>> Principal(user_id="ana", collections=frozenset({"docs"})).tenant
        'default'
    """

    user_id: str
    tenant: str = "default"
    agent_id: str | None = None
    collections: frozenset[str] | None = None
    can_write: bool = True

    def check_write(self) -> None:
        """Refuse a change on behalf of a read-only key.

        Raises:
            ConfigurationError: ``can_write`` is false.
        """
        if not self.can_write:
            raise ConfigurationError("this key is read-only: it cannot change anything")


def valid_name(name: object) -> bool:
    """Whether ``name`` may name a collection or a tenant folder (no path tricks)."""
    return isinstance(name, str) and bool(_NAME.fullmatch(name)) and ".." not in name
