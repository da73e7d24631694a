"""The examples in the chunking docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["levels", "base", "tokens", "recursive", "sentences", "markdown", "code", "semantic"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"ragmem.chunking.{name}")
    result = doctest.testmod(module)
    assert result.failed == 0
