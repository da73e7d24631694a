"""Keys files, bearer authentication, read-only keys, collection rights and the bind rule."""

from __future__ import annotations

import argparse
import json
import logging

import pytest
from fastapi.testclient import TestClient

from ragmem.errors import ConfigurationError
from ragmem.server.app import create_app
from ragmem.server.auth import KeyRing, Tenant, load_keys
from tests.server.conftest import DOCS, settings

ACME = "sk-acme-0123456789"
ACME_READ = "sk-acme-readonly-01"
GLOBEX = "sk-globex-987654321"

KEYS = {
    "keys": [
        {"key": ACME, "tenant": "acme", "collections": ["acme-docs"], "write": True},
        {"key": ACME_READ, "tenant": "acme", "collections": ["acme-docs"], "write": False},
        {"key": GLOBEX, "tenant": "globex", "collections": ["globex-docs"], "write": True},
    ]
}

TOML = f"""
[[keys]]
key = "{ACME}"
tenant = "acme"
collections = ["acme-docs"]
write = true

[[keys]]
key = "{GLOBEX}"
tenant = "globex"
collections = ["*"]
"""


def test_load_keys_json_and_toml(tmp_path):
    (tmp_path / "keys.json").write_text(json.dumps(KEYS))
    (tmp_path / "keys.toml").write_text(TOML)
    ring = load_keys(tmp_path / "keys.json")
    assert ring.authenticate(ACME) == Tenant("acme", ["acme-docs"], can_write=True)
    assert ring.authenticate(ACME_READ).can_write is False
    assert ring.authenticate("sk-nobody-00000") is None
    assert ring.authenticate("") is None
    toml = load_keys(tmp_path / "keys.toml")
    assert toml.authenticate(GLOBEX) == Tenant("globex", ["*"], can_write=False)
    assert ACME not in repr(ring)


@pytest.mark.parametrize(
    "entry",
    [
        {"key": "short", "tenant": "a"},
        {"key": ACME, "tenant": "bad/name"},
        {"key": ACME, "tenant": "a", "collections": "docs"},
        {"key": ACME, "tenant": "a", "write": "yes"},
    ],
)
def test_malformed_keys_files_are_refused_without_showing_the_key(tmp_path, entry):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [entry]}))
    with pytest.raises(ConfigurationError) as caught:
        load_keys(path)
    assert ACME not in str(caught.value)


def test_duplicate_key_is_refused(tmp_path):
    path = tmp_path / "keys.json"
    entry = {"key": ACME, "tenant": "a"}
    path.write_text(json.dumps({"keys": [entry, entry]}))
    with pytest.raises(ConfigurationError, match="twice"):
        load_keys(path)


@pytest.fixture
def keyed(tmp_path):
    ring = KeyRing(
        {
            ACME: Tenant("acme", ["acme-docs"], can_write=True),
            ACME_READ: Tenant("acme", ["acme-docs"], can_write=False),
            GLOBEX: Tenant("globex", ["globex-docs"], can_write=True),
        }
    )
    with TestClient(create_app(settings(tmp_path / "store", keys=ring))) as client:
        yield client


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_requests_need_a_known_key_which_is_never_echoed(keyed, caplog):
    caplog.set_level(logging.DEBUG)
    assert keyed.get("/collections").status_code == 401
    wrong = "sk-wrong-key-5555555"
    reply = keyed.get("/collections", headers=_auth(wrong))
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "invalid_api_key"
    assert wrong not in reply.text
    assert wrong not in caplog.text
    assert keyed.get("/healthz").status_code == 200


def test_tenants_see_only_their_collections(keyed):
    for key, name in ((ACME, "acme-docs"), (GLOBEX, "globex-docs")):
        reply = keyed.post("/collections", json={"name": name}, headers=_auth(key))
        assert reply.status_code == 201
        reply = keyed.post(
            f"/collections/{name}/documents", json={"documents": DOCS}, headers=_auth(key)
        )
        assert reply.status_code == 200
    listed = keyed.get("/collections", headers=_auth(ACME)).json()["collections"]
    assert [c["name"] for c in listed] == ["acme-docs"]
    models = keyed.get("/v1/models", headers=_auth(GLOBEX)).json()["data"]
    assert [m["id"] for m in models] == ["globex-docs"]
    # another tenant's collection is answered exactly like a missing one
    theirs = keyed.post("/collections/globex-docs/search", json={"query": "x"}, headers=_auth(ACME))
    missing = keyed.post("/collections/nothing/search", json={"query": "x"}, headers=_auth(ACME))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["type"] == missing.json()["error"]["type"]
    assert (
        keyed.post("/collections", json={"name": "other"}, headers=_auth(ACME)).status_code == 403
    )


def test_read_only_keys_cannot_write(keyed):
    keyed.post("/collections", json={"name": "acme-docs"}, headers=_auth(ACME))
    refused = keyed.post(
        "/collections/acme-docs/documents", json={"documents": DOCS}, headers=_auth(ACME_READ)
    )
    assert refused.status_code == 403
    memory = keyed.post("/memories", json={"text": "x", "user_id": "u"}, headers=_auth(ACME_READ))
    assert memory.status_code == 403
    search = keyed.post(
        "/collections/acme-docs/search", json={"query": "x"}, headers=_auth(ACME_READ)
    )
    assert search.status_code == 200


def test_memory_is_confined_to_the_tenant_whatever_user_id_is_named(keyed):
    body = {"text": "My locker code is 4711", "user_id": "alice"}
    added = keyed.post("/memories", json=body, headers=_auth(ACME)).json()
    memory_id = added[0]["item"]["id"]
    query = {"query": "locker code", "user_id": "alice"}
    assert keyed.post("/memories/search", json=query, headers=_auth(GLOBEX)).json() == []
    assert keyed.get("/memories?user_id=alice", headers=_auth(GLOBEX)).json() == []
    assert keyed.get(f"/memories/{memory_id}", headers=_auth(GLOBEX)).status_code == 404
    assert keyed.get(f"/memories/{memory_id}/history", headers=_auth(GLOBEX)).status_code == 404
    patch = keyed.patch(f"/memories/{memory_id}", json={"text": "hijacked"}, headers=_auth(GLOBEX))
    assert patch.status_code == 404
    assert keyed.delete(f"/memories/{memory_id}", headers=_auth(GLOBEX)).status_code == 404
    hits = keyed.post("/memories/search", json=query, headers=_auth(ACME)).json()
    assert [h["text"] for h in hits] == ["My locker code is 4711"]


def _args(**options) -> argparse.Namespace:
    base = {
        "store": ".",
        "host": "127.0.0.1",
        "port": 8000,
        "keys": None,
        "insecure": False,
        "embedder": "hashing",
        "embedder_options": None,
        "llm_model": None,
        "llm_base_url": None,
        "workers": 2,
        "search_workers": None,
        "queue": 2,
        "max_body_mb": 1.0,
        "timeout": 5.0,
    }
    return argparse.Namespace(**{**base, **options})


def test_without_keys_only_loopback_binds(tmp_path):
    from ragmem.server.cli import is_loopback, settings_from_args

    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    settings_from_args(_args(store=str(tmp_path)))
    with pytest.raises(ConfigurationError, match="--keys"):
        settings_from_args(_args(store=str(tmp_path), host="0.0.0.0"))
    assert settings_from_args(_args(store=str(tmp_path), host="0.0.0.0", insecure=True))
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(KEYS))
    assert settings_from_args(_args(store=str(tmp_path), host="0.0.0.0", keys=str(keys))).keys


def test_search_workers_default_to_one_per_core_and_must_be_positive(tmp_path):
    import os

    from ragmem.server.cli import settings_from_args

    assert settings_from_args(_args(store=str(tmp_path))).search_workers == (os.cpu_count() or 1)
    assert settings_from_args(_args(store=str(tmp_path), search_workers=3)).search_workers == 3
    for option in ("workers", "search_workers"):
        with pytest.raises(ConfigurationError, match="at least 1"):
            settings_from_args(_args(store=str(tmp_path), **{option: 0}))


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_serve_runs_blas_on_one_thread_per_request_worker(tmp_path, monkeypatch):
    # requests run in parallel worker threads; a multi-threaded BLAS under each of them
    # oversubscribes the cores (a search then costs several times its CPU)
    import uvicorn
    from threadpoolctl import threadpool_limits

    from ragmem.server.cli import run_serve

    seen: list[list[int]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.append(_blas_threads()))
    with threadpool_limits(limits=2, user_api="blas"):  # restored when the test ends
        assert run_serve(_args(store=str(tmp_path), log_level="warning")) == 0
    assert seen
    assert seen[0]
    assert set(seen[0]) == {1}


def test_serve_is_registered_on_the_ragmem_command():
    from ragmem.cli import build_parser

    args = build_parser().parse_args(["serve", "--store", "x", "--port", "9"])
    assert (args.command, args.port, args.host) == ("serve", 9, "127.0.0.1")
