"""`ragmem mcp --transport http`: streamable HTTP on 127.0.0.1, driven by the SDK's client."""

import json

import httpx
import pytest
from mcp import Client

from ragmem.cli import main

from .helpers import call, exercise_tools, http_server


async def test_every_tool_over_streamable_http(tmp_path):
    with http_server(tmp_path / "store", "--user-id", "ana", log=tmp_path / "log") as server:
        assert server.url.startswith("http://127.0.0.1:")
        async with Client(server.url) as client:
            ids = await exercise_tools(client)
        async with Client(server.url) as again:  # a new session, the same scope
            got = await call(again, "get_memory", {"memory_id": ids["new"]})
            assert got["memory"]["status"] == "active"
        # DNS rebinding: a web page must not reach the loopback server under its own name
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"Host": "evil.example", "Accept": "application/json, text/event-stream"}
        response = httpx.post(server.url, content=json.dumps(body), headers=headers)
        assert response.status_code in (400, 403, 421)


def test_binding_beyond_loopback_needs_keys(tmp_path, capsys):
    argv = ["mcp", "--transport", "http", "--host", "0.0.0.0", "--store", str(tmp_path)]
    assert main(argv) == 1
    assert "only to loopback" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_hosts_are_recognised(host):
    from ragmem._util import is_loopback

    assert is_loopback(host)
    assert not is_loopback("192.168.1.2")
