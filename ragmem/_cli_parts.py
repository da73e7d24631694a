"""Argument types, shared options and output formatting for the ``ragmem`` commands.

``ragmem.cli``, ``ragmem serve`` and ``ragmem mcp`` take their chat-model options from here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ragmem.context import Source
    from ragmem.llms.base import LLM
    from ragmem.types import Hit

from ragmem.errors import ConfigurationError

__all__ = [
    "add_llm_options",
    "answer_json",
    "csv_ints",
    "hit_json",
    "hit_location",
    "make_llm",
    "meta",
    "no_context",
    "one_line",
    "positive",
    "print_dropped",
    "print_sources",
    "snippet",
]


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def meta(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:  # numbers, booleans and JSON lists keep their type; anything else is a string
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    if not isinstance(parsed, (str, int, float, bool, list)):
        parsed = value
    return key, parsed


def csv_ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def add_llm_options(parser: argparse.ArgumentParser, *, without: str, prefix: str = "") -> None:
    """Add ``--{prefix}model`` and ``--{prefix}base-url``: a chat model of an OpenAI-compatible
    server; ``without`` says what the command does when no model is given."""
    parser.add_argument(
        f"--{prefix}model",
        default=os.environ.get("RAGMEM_MODEL"),
        help=f"chat model of an OpenAI-compatible server (env RAGMEM_MODEL); without one, "
        f"{without}",
    )
    parser.add_argument(
        f"--{prefix}base-url",
        default=os.environ.get("RAGMEM_BASE_URL"),
        help="its OpenAI-compatible endpoint, e.g. http://localhost:11434/v1 (env RAGMEM_BASE_URL)",
    )


def make_llm(model: str | None, base_url: str | None, *, prefix: str = "") -> LLM | None:
    """The chat model the options of ``add_llm_options`` name; None without a model.

    Raises:
        ConfigurationError: a base URL without a model.
    """
    if not model:
        if base_url:
            raise ConfigurationError(
                f"--{prefix}base-url needs --{prefix}model (the model name to ask)"
            )
        return None
    from ragmem.registry import get_llm

    return get_llm("openai", model=model, base_url=base_url)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def hit_json(hit: Hit) -> dict[str, Any]:
    return {"id": hit.id, "score": hit.score, "text": hit.text, "metadata": hit.metadata}


def hit_location(hit: Hit) -> str:
    meta = hit.metadata
    source = meta.get("source", meta.get("doc_id", hit.id))
    if "start" in meta and "end" in meta:
        return f"{source} [{meta['start']}:{meta['end']}]"
    return str(source)


def snippet(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def answer_json(answer: Any) -> dict[str, Any]:
    def source(s: Source) -> dict[str, Any]:
        return s.model_dump(exclude={"metadata"}) | {"source": s.metadata.get("source")}

    return {
        "question": answer.question,
        "answer": answer.text,
        "citations": [source(s) for s in answer.citations],
        "sources": [source(s) for s in answer.sources],
        "context": answer.context.text,
        "dropped": answer.context.dropped,
        "timings": answer.timings,
        "usage": None if answer.usage is None else answer.usage.model_dump(),
    }


def print_sources(sources: Sequence[Source], *, cited: bool) -> None:
    print("\nSources cited:" if cited else "\nSources sent:")
    for s in sources:
        span = "" if s.start is None else f" [{s.start}:{s.end}]"
        print(f"  [{s.number}] {s.metadata.get('source', s.doc_id)}{span}  score {s.score:.4f}")


def no_context(hits: Sequence[Hit], budget: int) -> str:
    if hits:
        return f"(no source fits the --budget of {budget} tokens)"
    return "(no matching sources)"


def print_dropped(dropped: Sequence[str], budget: int) -> None:
    if dropped:
        print(
            f"\n{len(dropped)} retrieved source(s) left out: they did not fit the --budget "
            f"of {budget} tokens",
            file=sys.stderr,
        )
