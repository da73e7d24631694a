"""Small helpers shared across the package (not public API)."""

from __future__ import annotations

import importlib
import ipaddress
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def cache_root() -> Path:
    """``$RAGMEM_CACHE_DIR``, else ``$XDG_CACHE_HOME/ragmem``, else ``~/.cache/ragmem``."""
    explicit = os.environ.get("RAGMEM_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ragmem"


def lazy_exports(
    package: str, names: dict[str, str], exported: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose adapters import an optional SDK.

    ``names`` maps an attribute to the module defining it; the module is imported on first
    access, so importing the package never imports the SDK.
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted([*exported, *names])

    return __getattr__, __dir__


async def to_thread(func: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
    """``asyncio.to_thread``, importing asyncio only when an async method is first used.

    asyncio costs tens of milliseconds to import, and most programs never await ragmem.
    """
    import asyncio

    return await asyncio.to_thread(func, *args, **kwargs)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
