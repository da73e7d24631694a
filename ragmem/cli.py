"""The ``ragmem`` command: index folders, search, ask with citations, delete, evaluate, a demo.

Every failure ragmem knows about ends as one line on stderr and a non-zero exit code:
1 for errors, 2 for bad usage, 130 when interrupted. A command is a function that adds
its subparser; ``COMMANDS`` lists them in help order (append to it to add one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ragmem._cli_parts import (
    add_llm_options,
    answer_json,
    hit_json,
    hit_location,
    make_llm,
    meta,
    no_context,
    one_line,
    positive,
    print_dropped,
    print_sources,
    snippet,
)
from ragmem.errors import ConfigurationError, InvalidFilterError, InvalidInputError, RagmemError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TypeAlias

    from ragmem.pipeline import RAGPipeline

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]
if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def _add_index(commands: Subparsers) -> None:
    index = commands.add_parser("index", help="index a folder or file (incrementally)")
    index.add_argument("path", help="folder or file to index")
    _store_option(index)
    index.add_argument(
        "--embedder",
        help="embedder for a new index: local (default), openai (any OpenAI-compatible "
        "server: Ollama, vLLM, TEI), cohere or hashing",
    )
    index.add_argument("--model", help="embedding model name (with --embedder openai or cohere)")
    index.add_argument(
        "--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1"
    )
    index.add_argument("--dimensions", type=positive, help="vector width (or Matryoshka cut)")
    index.add_argument(
        "--meta",
        type=meta,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metadata for every chunk of this run (repeatable), e.g. --meta tenant=acme",
    )
    index.add_argument(
        "--follow-symlinks", action="store_true", help="follow symlinks leading outside PATH"
    )
    index.add_argument("--text-field", default="text", help="field of JSON records holding text")
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    index.add_argument("--json", action="store_true", help="print the report as JSON")
    index.set_defaults(handler=_cmd_index)


def _add_delete(commands: Subparsers) -> None:
    delete = commands.add_parser("delete", help="remove indexed files or documents")
    delete.add_argument("paths", nargs="*", metavar="PATH", help="files (or folders) to remove")
    delete.add_argument(
        "--doc-id", action="append", default=[], metavar="ID", help="a document id (repeatable)"
    )
    _store_option(delete)
    delete.add_argument("--json", action="store_true", help="print the report as JSON")
    delete.set_defaults(handler=_cmd_delete)


def _add_search(commands: Subparsers) -> None:
    search = commands.add_parser("search", help="print the best matching chunks")
    search.add_argument("query")
    _retrieval_options(search)
    search.add_argument("--json", action="store_true", help="print a JSON list of hits")
    search.set_defaults(handler=_cmd_search)


def _add_ask(commands: Subparsers) -> None:
    ask = commands.add_parser("ask", help="answer a question with citations")
    ask.add_argument("question")
    _retrieval_options(ask)
    add_llm_options(ask, without="print the context that would be sent")
    ask.add_argument("--budget", type=positive, default=3000, help="context budget in tokens")
    ask.add_argument("--json", action="store_true", help="print the answer and sources as JSON")
    ask.set_defaults(handler=_cmd_ask)


def _add_demo(commands: Subparsers) -> None:
    demo = commands.add_parser("demo", help="index ragmem's own docs and answer questions about it")
    demo.add_argument("questions", nargs="*", help="questions to ask (default: a few built in)")
    demo.add_argument("--k", type=positive, default=3, help="sources per question")
    add_llm_options(demo, without="print the context that would be sent")
    demo.set_defaults(handler=_cmd_demo)


def _add_eval(commands: Subparsers) -> None:
    from ragmem.eval.command import add_command

    add_command(commands)


def _add_serve(commands: Subparsers) -> None:
    from ragmem.server.cli import add_serve

    add_serve(commands)


def _add_mcp(commands: Subparsers) -> None:
    from ragmem.mcp_server.command import add_command

    add_command(commands)


def _add_repair(commands: Subparsers) -> None:
    from ragmem._storage.repair import add_command

    add_command(commands)


COMMANDS: list[Callable[[Subparsers], None]] = [
    _add_index,
    _add_search,
    _add_ask,
    _add_delete,
    _add_eval,
    _add_demo,
    _add_serve,
    _add_mcp,
    _add_repair,
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command in ``COMMANDS`` registered."""
    from ragmem import __version__

    parser = argparse.ArgumentParser(
        prog="ragmem", description="Retrieval-augmented generation over your files, offline."
    )
    parser.add_argument("--version", action="version", version=f"ragmem {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    return parser


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        required=True,
        metavar="DIR",
        help="index folder (created by `ragmem index`)",
    )


def _retrieval_options(parser: argparse.ArgumentParser) -> None:
    _store_option(parser)
    parser.add_argument("--k", type=positive, default=5, help="number of results (default 5)")
    parser.add_argument("--where", metavar="JSON", help="metadata filter, e.g. '{\"year\": 2024}'")
    parser.add_argument(
        "--retriever", default="hybrid", help="hybrid (default), rrf, dense or bm25"
    )
    parser.add_argument(
        "--rerank", metavar="NAME", help="rerank candidates: late-interaction (local) or cohere"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except BrokenPipeError:
        # the reader went away (``ragmem search ... | head``): stop quietly, like other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("ragmem: interrupted", file=sys.stderr)
        return 130
    except (RagmemError, OSError) as exc:
        print(f"ragmem: error: {one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if os.environ.get("RAGMEM_DEBUG"):
            raise
        print(
            f"ragmem: internal error: {type(exc).__name__}: {one_line(exc)} "
            "(set RAGMEM_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 1


def _parse_where(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidFilterError(f"--where is not valid JSON: {exc.msg}") from exc


def _open(store: str, **options: Any) -> RAGPipeline:
    from pathlib import Path

    from ragmem.pipeline import RAGPipeline

    if not (Path(store) / "ragmem.json").exists():
        raise ConfigurationError(
            f"no index at {store}; create one with: ragmem index PATH --store {store}"
        )
    return RAGPipeline(store, **options)


def _cmd_index(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ragmem.pipeline import RAGPipeline

    if not Path(args.path).exists():  # before an empty index is created for nothing
        raise InvalidInputError(f"no such file or directory: {args.path}")
    embedder, options = _embedder_options(args)
    with RAGPipeline(args.store, embedder=embedder, embedder_options=options) as rag:
        report = rag.ingest_folder(
            args.path,
            text_field=args.text_field,
            metadata=dict(args.meta) or None,
            follow_symlinks=args.follow_symlinks,
            progress=not args.quiet and sys.stderr.isatty(),
        )
    if args.json:
        print(report.model_dump_json(indent=2))
        return 0
    for problem in report.failed:
        print(f"unreadable: {problem.path}: {problem.reason}", file=sys.stderr)
    for problem in report.skipped:
        print(f"skipped: {problem.path}: {problem.reason}", file=sys.stderr)
    print(report.summary())
    return 0


def _embedder_options(args: argparse.Namespace) -> tuple[str | None, dict[str, Any]]:
    """The embedder name and options from ``--embedder``, ``--model``, ``--base-url``...

    API keys are never options: the adapters read them from the environment.
    """
    options: dict[str, Any] = {}
    if args.model is not None:
        options["model"] = args.model
    if args.base_url is not None:
        options["base_url"] = args.base_url
    if args.dimensions is not None:
        options["dimensions"] = args.dimensions
    if options and args.embedder is None:
        raise ConfigurationError(
            "--model, --base-url and --dimensions need --embedder (e.g. --embedder openai)"
        )
    return args.embedder, options


def _cmd_delete(args: argparse.Namespace) -> int:
    from pathlib import Path

    if bool(args.paths) == bool(args.doc_id):
        raise InvalidInputError("delete takes PATH arguments or --doc-id, not both or neither")
    with _open(args.store) as rag:
        if args.doc_id:
            report = rag.delete(args.doc_id)
        else:
            labels = [Path(p).as_posix() for p in args.paths]
            report = rag.delete(
                where={
                    "$or": [{"source": label} for label in labels]
                    + [{"source": {"$prefix": label.rstrip("/") + "/"}} for label in labels]
                }
            )
    if args.json:
        print(report.model_dump_json(indent=2))
    elif not report.removed:
        print("nothing to delete: no indexed file or document matches")
    else:
        for label in report.removed:
            print(f"deleted: {label}")
        print(f"{len(report.removed)} removed, {report.chunks_deleted} chunks deleted")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    with _open(args.store, read_only=True, retriever=args.retriever, reranker=args.rerank) as rag:
        hits = rag.search(args.query, k=args.k, where=_parse_where(args.where))
    if args.json:
        print(json.dumps([hit_json(h) for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("no results")
    for rank, hit in enumerate(hits, start=1):
        print(f"{rank:>2}. {hit.score:.4f}  {hit_location(hit)}")
        print(f"    {snippet(hit.text or '')}")
    return 0


def _cmd_ask(args: argparse.Namespace) -> int:
    from ragmem.context import ContextBuilder
    from ragmem.pipeline.defaults import default_tokenizer

    llm = make_llm(args.model, args.base_url)
    builder = ContextBuilder(
        args.budget, tokenizer=default_tokenizer(), answer_tokens=512 if llm else 0
    )
    options = {"retriever": args.retriever, "reranker": args.rerank, "k": args.k}
    with _open(args.store, llm=llm, context=builder, read_only=True, **options) as rag:
        where = _parse_where(args.where)
        if llm is None or args.json:
            answer = rag.query(args.question, where=where)
            if args.json:
                print(json.dumps(answer_json(answer), indent=2, ensure_ascii=False))
                return 0
            print("No LLM configured (--model): this is the context that would be sent.\n")
            print(answer.context.text or no_context(answer.hits, args.budget))
            print_dropped(answer.context.dropped, args.budget)
            return 0
        stream = rag.stream(args.question, where=where)
        for piece in stream:
            sys.stdout.write(piece)
            sys.stdout.flush()
        print()
        print_sources(
            stream.answer.citations or stream.sources, cited=bool(stream.answer.citations)
        )
        print_dropped(stream.context.dropped, args.budget)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ragmem.demo import run_demo

    return run_demo(args.questions, k=args.k, llm=make_llm(args.model, args.base_url))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
