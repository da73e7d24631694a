"""The package's small shared helpers."""

from pathlib import Path

import pytest

from ragmem._util import cache_root


def test_cache_root_prefers_ragmem_then_xdg_then_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    monkeypatch.delenv("RAGMEM_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_root() == Path("/home/someone/.cache/ragmem")
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert cache_root() == Path("/xdg/ragmem")
    monkeypatch.setenv("RAGMEM_CACHE_DIR", "/explicit")
    assert cache_root() == Path("/explicit")
    monkeypatch.setenv("RAGMEM_CACHE_DIR", "")  # empty is unset
    assert cache_root() == Path("/xdg/ragmem")
