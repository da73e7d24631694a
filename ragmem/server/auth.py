"""API keys and tenants: who may call the service and what each caller may touch.

A keys file (TOML or JSON) maps each API key to a tenant, the collections it may use
(``"*"`` for all) and whether it may write::

    {"keys": [{"key": "sk-acme-1", "tenant": "acme", "collections": ["docs"], "write": true}]}

or, in TOML::

    [[keys]]
    key = "sk-acme-1"
    tenant = "acme"
    collections = ["docs"]
    write = true

Keys are compared in constant time and never appear in a ``repr``, a log line or an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragmem.errors import ConfigurationError

__all__ = ["ANONYMOUS", "KeyRing", "Tenant", "load_keys", "valid_name"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def valid_name(name: str) -> bool:
    """Whether ``name`` may name a tenant or a collection (letters, digits, ``_.-``)."""
    return bool(_NAME.fullmatch(name)) and ".." not in name


@dataclass(frozen=True)
class Tenant:
    """One tenant: its name, the collections it may use and whether it may write.

    Example:
        >>> Tenant("acme", ["docs"], can_write=False).may_use("docs")
        True
    """

    name: str
    collections: list[str] = field(default_factory=lambda: ["*"])
    can_write: bool = True

    def may_use(self, collection: str) -> bool:
        """Whether this tenant may read ``collection`` (writing also needs ``can_write``)."""
        return "*" in self.collections or collection in self.collections


ANONYMOUS = Tenant("default", ["*"], can_write=True)
"""The tenant of every request on a server started without ``--keys`` (loopback only)."""


class KeyRing:
    """The API keys a server accepts, each mapped to its tenant.

    Only SHA-256 digests of the keys are kept; ``authenticate`` compares the digest of
    the presented token with every known digest in constant time, so neither the time
    taken nor the memory of the process tells a key.

    Example:
        >>> ring = KeyRing({"sk-1": Tenant("acme")})
        >>> ring.authenticate("sk-1").name, ring.authenticate("sk-2")
        ('acme', None)
    """

    def __init__(self, keys: dict[str, Tenant]) -> None:
        self._entries = [(_digest(key), tenant) for key, tenant in keys.items()]

    def authenticate(self, token: str) -> Tenant | None:
        """The tenant whose key is ``token``, or ``None``."""
        presented = _digest(token)
        found = None
        for digest, tenant in self._entries:
            # every entry is compared, so the time does not tell which one matched
            if hmac.compare_digest(presented, digest):
                found = tenant
        return found

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"KeyRing({len(self._entries)} keys)"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def load_keys(path: str | Path) -> KeyRing:
    """Read a keys file (``.toml``, or JSON otherwise) into a ``KeyRing``.

    Raises:
        ConfigurationError: the file is unreadable or an entry is malformed; the message
            names the entry by position and tenant, never by its key.
    """
    file = Path(path)
    try:
        raw = file.read_text(encoding="utf-8")
        data: Any = _parse_toml(raw) if file.suffix.lower() == ".toml" else json.loads(raw)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the keys file {file}: {exc}") from exc
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(f"the keys file {file} needs a non-empty list 'keys'")
    keys: dict[str, Tenant] = {}
    for n, entry in enumerate(entries):
        keys.update([_entry(file, n, entry, keys)])
    return KeyRing(keys)


def _entry(file: Path, n: int, entry: Any, seen: dict[str, Tenant]) -> tuple[str, Tenant]:
    where = f"{file}: keys[{n}]"
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where} is not a table")
    key, tenant = entry.get("key"), entry.get("tenant")
    collections, write = entry.get("collections", ["*"]), entry.get("write", False)
    if not isinstance(key, str) or len(key) < 8:
        raise ConfigurationError(f"{where}: 'key' must be a string of at least 8 characters")
    if key in seen:
        raise ConfigurationError(f"{where}: the same key appears twice")
    if not isinstance(tenant, str) or not valid_name(tenant):
        raise ConfigurationError(f"{where}: 'tenant' must be a name of letters, digits, _.-")
    if not isinstance(collections, list) or not all(isinstance(c, str) for c in collections):
        raise ConfigurationError(f"{where} (tenant {tenant}): 'collections' must be a list")
    if not isinstance(write, bool):
        raise ConfigurationError(f"{where} (tenant {tenant}): 'write' must be true or false")
    return key, Tenant(tenant, list(collections), can_write=write)


def _parse_toml(text: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    return tomllib.loads(text)
