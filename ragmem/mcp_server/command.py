"""``ragmem mcp``: serve memory and document search to MCP clients, over stdio or HTTP.

Only ``add_command`` is imported with the CLI; the SDK and the library load when the
command runs, so ``ragmem --help`` stays fast and works without the ``mcp`` extra.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragmem._cli_parts import add_llm_options, make_llm
from ragmem._util import is_loopback
from ragmem.errors import ConfigurationError

if TYPE_CHECKING:
    from mcp.server.auth.provider import AccessToken
    from mcp.server.mcpserver import MCPServer

    from ragmem.mcp_server.toolbox import Principal, Toolbox

__all__ = ["add_command", "default_store", "run"]


def default_store() -> str:
    """``$RAGMEM_STORE``, else ``$XDG_DATA_HOME/ragmem`` (``~/.local/share/ragmem``)."""
    configured = os.environ.get("RAGMEM_STORE")
    if configured:
        return configured
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(data, "ragmem")


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``ragmem mcp`` and its options."""
    mcp = commands.add_parser(
        "mcp",
        help="serve memory and document search as MCP tools (stdio or HTTP)",
        description="Serve long-term memory and document search to MCP clients. Over stdio "
        "the server acts for one --user-id (and --agent-id); over HTTP, for it too, or for "
        "the tenant of each request's key with --keys.",
    )
    mcp.add_argument(
        "--store",
        default=default_store(),
        metavar="DIR",
        help="store folder: memory in DIR/_memory, document collections in DIR/NAME, as "
        "`ragmem serve` lays them out (default $RAGMEM_STORE or ~/.local/share/ragmem)",
    )
    mcp.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    mcp.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    mcp.add_argument("--port", type=int, default=8765, help="HTTP port, 0 for any free one")
    mcp.add_argument("--user-id", default="default", help="whose memory (default 'default')")
    mcp.add_argument("--agent-id", default=None, help="confine memories to this agent too")
    mcp.add_argument(
        "--embedder",
        default=None,
        help="registered embedder for the memory and new collections (default: the "
        "bundled local model; 'hashing' is a fast fake for tests)",
    )
    mcp.add_argument("--keys", metavar="FILE", help="HTTP API keys mapping to tenants (JSON)")
    add_llm_options(mcp, without="add_memory(infer=true) is refused")
    mcp.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Start the server the parsed ``args`` describe; returns when the client leaves."""
    import anyio

    from ragmem.mcp_server.toolbox import Principal, Toolbox
    from ragmem.mcp_server.tools import build_server  # MissingDependencyError without [mcp]

    if args.transport == "stdio" and args.keys:
        raise ConfigurationError("--keys is for --transport http; stdio serves one --user-id")
    if args.transport == "http" and not args.keys and not is_loopback(args.host):
        raise ConfigurationError(
            f"without --keys the server binds only to loopback, not {args.host!r}: anyone "
            "who can reach it could read and change the memory"
        )
    toolbox = Toolbox(
        Path(args.store), embedder=args.embedder, llm=make_llm(args.model, args.base_url)
    )
    local = Principal(user_id=args.user_id, agent_id=args.agent_id)
    try:
        if args.transport == "stdio":
            server = build_server(toolbox, lambda: local)
            anyio.run(server.run_stdio_async)
        else:
            anyio.run(_serve_http, toolbox, local, args)
    finally:
        toolbox.close()
    return 0


class _KeyVerifier:
    """Maps bearer keys to tenants (``ragmem.server.auth``) for the SDK's auth middleware."""

    def __init__(self, path: str, user_id: str, agent_id: str | None) -> None:
        try:
            # imported by name: the key file format belongs to `ragmem serve`
            auth = importlib.import_module("ragmem.server.auth")
        except ImportError as exc:
            raise ConfigurationError(
                "--keys needs ragmem.server.auth (the `ragmem serve` key files)"
            ) from exc
        self.ring = auth.load_keys(path)
        self.user_id = user_id
        self.agent_id = agent_id
        self.tenants: dict[str, Any] = {}

    async def verify_token(self, token: str) -> AccessToken | None:
        from mcp.server.auth.provider import AccessToken

        tenant = self.ring.authenticate(token)
        if tenant is None:
            return None
        self.tenants[tenant.name] = tenant
        # the SDK keeps the token beside the session; a digest keeps the key itself out of it
        digest = hashlib.sha256(token.encode()).hexdigest()
        return AccessToken(token=digest, client_id=tenant.name, scopes=[])

    def principal(self) -> Principal:
        from mcp.server.auth.middleware.auth_context import get_access_token

        from ragmem.mcp_server.toolbox import Principal

        access = get_access_token()
        tenant = None if access is None else self.tenants.get(access.client_id)
        if tenant is None:  # the middleware admits no request without a valid key
            raise ConfigurationError("this request carries no valid API key")
        collections = list(tenant.collections)
        return Principal(
            user_id=self.user_id,
            tenant=tenant.name,
            agent_id=self.agent_id,
            collections=None if "*" in collections else frozenset(collections),
            can_write=bool(tenant.can_write),
        )


async def _serve_http(toolbox: Toolbox, local: Principal, args: argparse.Namespace) -> None:
    import uvicorn

    from ragmem.mcp_server.tools import build_server

    # bind first, so that port 0 picks a free port and the address printed is the real one
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    # listen before the address is printed: a client that connects while uvicorn still
    # starts up waits in the kernel's queue instead of being refused
    sock.listen(socket.SOMAXCONN)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    url = f"http://{shown}:{port}/mcp"
    if args.keys:
        verifier = _KeyVerifier(args.keys, args.user_id, args.agent_id)
        server = _keyed_server(toolbox, verifier, url)
    else:
        server = build_server(toolbox, lambda: local)
    app = server.streamable_http_app(host=args.host)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    print(f"ragmem mcp: serving {url}", file=sys.stderr, flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


def _keyed_server(toolbox: Toolbox, verifier: _KeyVerifier, url: str) -> MCPServer:
    from mcp.server.auth.settings import AuthSettings

    from ragmem.mcp_server.tools import build_server

    auth = AuthSettings(issuer_url=url, resource_server_url=None)
    return build_server(toolbox, verifier.principal, auth=auth, token_verifier=verifier)
