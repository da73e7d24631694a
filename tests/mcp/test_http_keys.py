"""`ragmem mcp --transport http --keys FILE`: each request's key decides the tenant."""

import json

import httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from .helpers import call, fails, http_server

KEYS = {
    "keys": [
        {"key": "sk-acme-writer-1", "tenant": "acme", "collections": ["docs"], "write": True},
        {"key": "sk-acme-reader-1", "tenant": "acme", "collections": ["docs"], "write": False},
        {"key": "sk-globex-0001", "tenant": "globex", "collections": ["*"], "write": True},
    ]
}


def keyed(url, key):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    return Client(streamable_http_client(url, http_client=http))


async def test_keys_decide_the_tenant_its_collections_and_whether_it_writes(tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(KEYS))
    log = tmp_path / "log"
    with http_server(tmp_path / "store", "--keys", str(keys), log=log) as server:
        for headers in ({}, {"Authorization": "Bearer sk-wrong-key-1"}):
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
            headers = {**headers, "Accept": "application/json, text/event-stream"}
            response = httpx.post(server.url, json=body, headers=headers)
            assert response.status_code == 401
        async with keyed(server.url, "sk-acme-writer-1") as acme:
            added = await call(acme, "add_memory", {"text": "Acme's renewal is in March"})
            await call(acme, "add_document", {"text": "Acme handbook", "collection": "docs"})
            await fails(acme, "add_document", {"text": "x", "collection": "other"}, "unknown")
        memory_id = added["changes"][0]["id"]
        async with keyed(server.url, "sk-globex-0001") as globex:
            await fails(globex, "get_memory", {"memory_id": memory_id}, "unknown memory id")
            assert (await call(globex, "search_memory", {"query": "renewal"}))["hits"] == []
            await call(globex, "add_document", {"text": "Globex notes", "collection": "other"})
        async with keyed(server.url, "sk-acme-reader-1") as reader:
            got = await call(reader, "get_memory", {"memory_id": memory_id})
            assert got["memory"]["text"] == "Acme's renewal is in March"
            await fails(reader, "add_memory", {"text": "x"}, "read-only")
            assert (await call(reader, "list_collections", {}))["collections"] == ["docs"]
    assert "sk-" not in log.read_text(errors="replace")  # keys are never logged
