"""The ``ragmem`` command.

Each command group registers its subcommands in one ``_add_*`` function; a handler
takes the parsed arguments and returns the exit code. Errors print one line and
exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ragmem.errors import RagmemError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


def _csv_ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _default_cache_dir() -> str:
    configured = os.environ.get("RAGMEM_CACHE_DIR")
    return configured or str(Path.home() / ".cache" / "ragmem")


def _eval_beir(args: argparse.Namespace) -> int:
    from ragmem.eval.beir import run_beir

    results = run_beir(
        args.dataset,
        args.retriever.split(","),
        split=args.split,
        ks=args.k,
        embedder=args.embedder,
        cache_dir=None if args.no_cache else args.cache_dir,
    )
    for result in results:
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            metrics = "  ".join(f"{key} {value:.4f}" for key, value in result.items() if "@" in key)
            print(f"{result['retriever']:<14} {metrics}  ({result['timings']})", flush=True)
    return 0


def _add_eval(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ragmem.eval.beir import CONFIGURATIONS

    group = commands.add_parser("eval", help="evaluate retrieval on benchmark datasets")
    benchmarks = group.add_subparsers(dest="benchmark", required=True)
    beir = benchmarks.add_parser("beir", help="a BEIR-format dataset folder")
    beir.add_argument("dataset", help="folder with corpus.jsonl[.gz], queries.jsonl, qrels/")
    beir.add_argument(
        "--retriever",
        default="bm25",
        help=f"comma-separated, from: {', '.join(CONFIGURATIONS)} (default bm25)",
    )
    beir.add_argument("--split", default="test", help="qrels split (default test)")
    beir.add_argument("--k", type=_csv_ints, default=[10, 100], help="cutoffs (default 10,100)")
    beir.add_argument("--embedder", default="local", help="registered embedder (default local)")
    beir.add_argument(
        "--cache-dir",
        default=_default_cache_dir(),
        help="where corpus vectors are cached (default $RAGMEM_CACHE_DIR or ~/.cache/ragmem)",
    )
    beir.add_argument("--no-cache", action="store_true", help="embed the corpus every run")
    beir.add_argument("--json", action="store_true", help="one JSON object per configuration")
    beir.set_defaults(handler=_eval_beir)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command registered."""
    parser = argparse.ArgumentParser(prog="ragmem", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _add_eval(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except RagmemError as exc:
        print(f"ragmem: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
