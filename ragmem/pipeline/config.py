"""The pipeline's ``ragmem.json``: which embedder built an index, so any later run can reopen it.

The file is written when the first chunk is committed, not when the pipeline is
constructed: a first run that fails before storing anything leaves the folder free for
another embedder. Embedders given as instances are recorded by registry name and options
where ragmem knows how to rebuild them (OpenAI-compatible, Cohere, hashing, local), so
the CLI and every later ``RAGPipeline(path)`` reopen an index built in Python. API keys
are never recorded; they come from the environment.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ragmem.errors import ConfigurationError, CorruptIndexError

if TYPE_CHECKING:
    from pathlib import Path

    from ragmem.embedders.base import Embedder

__all__ = [
    "CONFIG_FILE",
    "check_embedder",
    "embedder_entry",
    "read_config",
    "saved_embedder",
    "write_config",
]

CONFIG_FILE = "ragmem.json"
VERSION = 1


def _spec(embedder: Embedder) -> tuple[str, dict[str, Any]] | None:
    """A registry name and options that rebuild ``embedder``, when ragmem knows them."""
    kind = type(embedder).__module__ + "." + type(embedder).__qualname__
    if kind == "ragmem.embedders.openai.OpenAIEmbedder":
        options = {"model": getattr(embedder, "model", None), "dimensions": embedder.dimensions}
        base_url = getattr(embedder, "base_url", None)
        if base_url:
            options["base_url"] = base_url
        return "openai", options
    if kind == "ragmem.embedders.hashing.HashingEmbedder":
        return "hashing", {"dimensions": embedder.dimensions, "seed": getattr(embedder, "seed", 0)}
    if kind == "ragmem.embedders.cohere.CohereEmbedder":
        return "cohere", {"model": getattr(embedder, "model", None)}
    return None


def embedder_entry(embedder: Embedder, name: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """The config entry for ``embedder`` (built from registry ``name`` and ``options``)."""
    if name is None:
        spec = _spec(embedder)
        name, options = spec if spec is not None else (None, {})
    return {
        "name": name,
        "options": options,
        "id": embedder.name,
        "dimensions": embedder.dimensions,
    }


def read_config(folder: Path | None) -> dict[str, Any] | None:
    """The saved config of the index in ``folder``, or None when there is none yet."""
    if folder is None or not (folder / CONFIG_FILE).exists():
        return None
    file = folder / CONFIG_FILE
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
        if config["version"] != VERSION:
            raise ValueError(f"unknown version {config['version']!r}")
        if not {"name", "id", "options", "dimensions"} <= set(config["embedder"]):
            raise ValueError("the embedder entry is incomplete")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptIndexError(file, f"unreadable pipeline config ({exc})") from exc
    return dict(config)


def write_config(folder: Path, entry: dict[str, Any]) -> None:
    """Record the embedder of the index in ``folder`` (atomically)."""
    tmp = folder / f"{CONFIG_FILE}.tmp"
    tmp.write_text(json.dumps({"version": VERSION, "embedder": entry}, indent=2), "utf-8")
    tmp.replace(folder / CONFIG_FILE)


def saved_embedder(config: dict[str, Any], folder: Path) -> tuple[str, dict[str, Any]]:
    """The registry name and options to rebuild the embedder a saved index was built with.

    Raises:
        ConfigurationError: the index was built with an embedder ragmem cannot rebuild.
    """
    entry = config["embedder"]
    if entry["name"] is None:
        legacy = _from_id(entry["id"], entry["dimensions"])
        if legacy is not None:
            return legacy
        raise ConfigurationError(
            f"the index at {folder} was built with embedder {entry['id']!r}, which ragmem "
            "cannot rebuild by name; pass the same embedder instance (embedder=...)"
        )
    return entry["name"], dict(entry["options"])


def _from_id(id_: str, dimensions: int) -> tuple[str, dict[str, Any]] | None:
    # configs written before instances were recorded by spec kept only the embedder's name
    if id_.startswith("openai:") and ":unnormalized" not in id_:
        model, _, base_url = id_.removeprefix("openai:").partition("@")
        options: dict[str, Any] = {"model": model, "dimensions": dimensions}
        if base_url:
            options["base_url"] = base_url
        return "openai", options
    return None


def check_embedder(config: dict[str, Any], embedder: Embedder, folder: Path) -> None:
    """Refuse an embedder other than the one the index was built with.

    Raises:
        ConfigurationError: naming both embedders.
    """
    want = config["embedder"]
    if (want["id"], want["dimensions"]) != (embedder.name, embedder.dimensions):
        raise ConfigurationError(
            f"the index at {folder} was built with embedder {want['id']!r} "
            f"({want['dimensions']} dimensions), not {embedder.name!r} "
            f"({embedder.dimensions}); open it with the same embedder"
        )
