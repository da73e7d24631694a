"""Which embedder a memory directory was built with, recorded in its ledger.

Vectors from two embedders of the same width live in different spaces: mixing them
gives nonsense recall without any error. The ledger therefore records the embedder's
name and dimensions on first use and refuses another one later. It also records how
to rebuild the embedder where that needs no secret (a registry name and options), so a
memory can be reopened without naming its embedder again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ragmem.agents.records import Ledger
from ragmem.embedders.base import Embedder
from ragmem.errors import ConfigurationError
from ragmem.registry import get_embedder

__all__ = ["KEY", "open_embedder"]

KEY = "embedder"


def _recipe(embedder: Embedder, built_by_default: bool) -> dict[str, Any] | None:
    """Registry name and options that rebuild ``embedder``, or None when unknown."""
    from ragmem.embedders.hashing import HashingEmbedder

    if built_by_default:
        return {"backend": "local", "options": {}}
    if type(embedder) is HashingEmbedder:
        return {
            "backend": "hashing",
            "options": {"dimensions": embedder.dimensions, "seed": embedder.seed},
        }
    if type(embedder).__name__ == "OpenAIEmbedder" and type(embedder).__module__.startswith(
        "ragmem."
    ):
        options = {
            "model": getattr(embedder, "model", None),
            "dimensions": embedder.dimensions,
            "base_url": getattr(embedder, "base_url", None),
            "normalize": getattr(embedder, "normalize", True),
        }
        return {"backend": "openai", "options": options}
    return None


def _default() -> Embedder:
    from ragmem.embedders.local import LocalEmbedder

    embedder: Embedder = LocalEmbedder()
    return embedder


def open_embedder(
    ledger: Ledger, embedder: Embedder | None, where: Path | None
) -> tuple[Embedder, str | None]:
    """The embedder for a memory: the one given (checked against the recorded one), else
    the recorded one rebuilt, else the bundled local model.

    Returns:
        The embedder, and the entry to record with ``ledger.set_meta("embedder", ...)``
        once the memory is open (None when one is recorded already).

    Raises:
        ConfigurationError: the given embedder differs from the recorded one, or the
            recorded one cannot be rebuilt and none was given.
    """
    raw = ledger.meta(KEY)
    recorded = None if raw is None else json.loads(raw)
    if embedder is None and recorded is not None:
        recipe = recorded.get("recipe")
        if recipe is None:
            raise ConfigurationError(
                f"the memory at {where} was built with embedder {recorded['name']!r} "
                f"({recorded['dimensions']} dimensions), which ragmem cannot rebuild by "
                "itself; pass it as Memory(..., embedder=...)"
            )
        embedder = get_embedder(recipe["backend"], **recipe["options"])
        assert embedder is not None
        built_by_default = recipe["backend"] == "local" and not recipe["options"]
    else:
        built_by_default = embedder is None
        embedder = embedder if embedder is not None else _default()
    if recorded is not None:
        if (recorded["name"], recorded["dimensions"]) != (embedder.name, embedder.dimensions):
            raise ConfigurationError(
                f"the memory at {where} was built with embedder {recorded['name']!r} "
                f"({recorded['dimensions']} dimensions), not {embedder.name!r} "
                f"({embedder.dimensions} dimensions); open it with the same embedder"
            )
        return embedder, None
    entry = {
        "name": embedder.name,
        "dimensions": embedder.dimensions,
        "recipe": _recipe(embedder, built_by_default),
    }
    return embedder, json.dumps(entry)
