"""``ragmem serve``: its command-line options, and starting uvicorn with them."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragmem._cli_parts import add_llm_options, make_llm
from ragmem._util import is_loopback
from ragmem.errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from ragmem.server.state import Settings

__all__ = ["add_serve", "is_loopback", "settings_from_args"]


def add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``serve`` command on the ``ragmem`` parser."""
    serve = commands.add_parser("serve", help="serve collections and memory over HTTP")
    serve.add_argument("--store", default=".", metavar="DIR", help="folder of collections")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--keys", metavar="FILE", help="API keys file (TOML or JSON)")
    serve.add_argument(
        "--insecure", action="store_true", help="allow a non-loopback bind without --keys"
    )
    serve.add_argument("--embedder", default="local", help="embedder for new collections")
    serve.add_argument(
        "--embedder-options", metavar="JSON", help="embedder options, e.g. '{\"dimensions\": 256}'"
    )
    add_llm_options(serve, prefix="llm-", without="answers quote sources")
    serve.add_argument(
        "--workers", type=int, default=8, help="writes, ingests and memory changes at once"
    )
    serve.add_argument(
        "--search-workers",
        type=int,
        default=None,
        metavar="N",
        help="searches and embeddings at once (default: one per core)",
    )
    serve.add_argument("--queue", type=int, default=64, help="requests waiting before 503")
    serve.add_argument("--max-body-mb", type=float, default=32.0, help="largest request body")
    serve.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    serve.add_argument("--log-level", default="info", help="uvicorn log level")
    serve.set_defaults(handler=run_serve)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The server settings the parsed options describe.

    Raises:
        ConfigurationError: a non-loopback bind without keys and without ``--insecure``,
            or an unreadable keys file or option.
    """
    from ragmem.server.auth import load_keys
    from ragmem.server.state import Settings

    keys = load_keys(args.keys) if args.keys else None
    if keys is None and not is_loopback(args.host) and not args.insecure:
        raise ConfigurationError(
            f"refusing to serve {args.host} without --keys: anyone who can reach it could "
            "read and write everything; give --keys FILE, or --insecure to do it anyway"
        )
    for name in ("workers", "search_workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigurationError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    options: dict[str, Any] = {}
    if args.embedder_options:
        try:
            options = json.loads(args.embedder_options)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"--embedder-options is not JSON: {exc.msg}") from exc
    llm = make_llm(args.llm_model, args.llm_base_url, prefix="llm-")
    return Settings(
        store=Path(args.store),
        keys=keys,
        embedder=args.embedder,
        embedder_options=options,
        llm=llm,
        workers=args.workers,
        **({} if args.search_workers is None else {"search_workers": args.search_workers}),
        queue=args.queue,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        timeout=args.timeout,
    )


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; in-flight requests finish before exit."""
    try:
        import uvicorn
        from threadpoolctl import threadpool_limits

        from ragmem.server.app import create_app
    except ImportError as exc:
        raise MissingDependencyError(package=exc.name or "fastapi", extra="server") from exc
    settings = settings_from_args(args)
    # Requests already run side by side in worker threads; a BLAS library that also
    # splits each vector-matrix product over every core oversubscribes them, and its
    # spinning threads then cost several times the product itself. The process is the
    # server's, so the limit is never lifted.
    threadpool_limits(limits=1, user_api="blas")
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=max(5, int(settings.timeout)),
    )
    return 0
