"""``ragmem eval``: run a retrieval benchmark from the command line and print its table."""

from __future__ import annotations

import argparse
import json

from ragmem._cli_parts import csv_ints
from ragmem._util import cache_root
from ragmem.errors import InvalidInputError

__all__ = ["add_command"]


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``ragmem eval`` with its benchmarks: ``beir``, ``locomo``, ``longmemeval``."""
    from ragmem.eval.beir import CONFIGURATIONS
    from ragmem.eval.longmemeval import add_arguments

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
    beir.add_argument("--k", type=csv_ints, default=[10, 100], help="cutoffs (default 10,100)")
    beir.add_argument("--embedder", default="local", help="registered embedder (default local)")
    beir.add_argument(
        "--cache-dir",
        default=str(cache_root()),
        help="where corpus vectors are cached (default %(default)s: $RAGMEM_CACHE_DIR, else "
        "$XDG_CACHE_HOME/ragmem, else ~/.cache/ragmem)",
    )
    beir.add_argument("--no-cache", action="store_true", help="embed the corpus every run")
    beir.add_argument("--json", action="store_true", help="one JSON object per configuration")
    beir.set_defaults(handler=_beir)
    locomo = benchmarks.add_parser("locomo", help="LoCoMo long-conversation memory recall")
    locomo.add_argument("path", help="locomo10.json (or .json.gz)")
    locomo.add_argument("--k", type=csv_ints, default=[5, 10], help="cutoffs (default 5,10)")
    locomo.add_argument(
        "--conversations",
        default=None,
        help="which conversations, as 1-based ranges: e.g. 1-5 or 6-10 (default all)",
    )
    locomo.add_argument("--json", action="store_true", help="print one JSON object")
    locomo.set_defaults(handler=_locomo)
    add_arguments(benchmarks.add_parser("longmemeval", help="LongMemEval memory recall"))


def _beir(args: argparse.Namespace) -> int:
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


def _locomo(args: argparse.Namespace) -> int:
    from ragmem.embedders.local import LocalEmbedder
    from ragmem.eval.locomo import evaluate, load_conversations, memory_recall

    conversations = load_conversations(args.path)
    if args.conversations:
        first, _, last = args.conversations.partition("-")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError as exc:
            raise InvalidInputError(
                f"--conversations takes a range such as 1-5, got {args.conversations!r}"
            ) from exc
        conversations = conversations[lo - 1 : hi]
    result = evaluate(conversations, memory_recall(LocalEmbedder()), ks=args.k)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"LoCoMo, {len(conversations)} conversations ({', '.join(result['conversations'])})")
    rows = {
        **result["per_category"],
        "categories 1-4": result["categories 1-4"],
        "categories 1-5": result["categories 1-5"],
    }
    metrics = [f"{m}@{k}" for k in args.k for m in ("recall", "hit")]
    print(f"{'':24}{'n':>6}" + "".join(f"{m:>11}" for m in metrics))
    for name, row in rows.items():
        print(f"{name:24}{row['n']:>6}" + "".join(f"{row[m]:>11.1f}" for m in metrics))
    print(f"indexing {result['index_seconds']} s, {result['query_ms_mean']} ms per question")
    return 0
