"""Random multi-tenant request sequences: no answer ever shows another tenant's data."""

from __future__ import annotations

import itertools

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragmem.server.app import create_app
from ragmem.server.auth import KeyRing, Tenant
from tests.server import conftest

TENANTS = {
    "acme": "sk-acme-aaaaaaaaaa",
    "globex": "sk-globex-bbbbbbbbb",
    "initech": "sk-init-ccccccc",
}
WORDS = ["apple", "river", "engine", "music", "garden", "planet"]
USERS = ["alice", "bob"]  # the same user ids in every tenant


class World:
    """The server and what each tenant has put in it (its texts and ids)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.counter = itertools.count()
        self.owned: dict[str, set[str]] = {t: set() for t in TENANTS}
        self.memories: dict[str, list[str]] = {t: [] for t in TENANTS}
        self.jobs: list[str] = []

    def call(self, tenant: str, method: str, path: str, body=None):
        headers = {"Authorization": f"Bearer {TENANTS[tenant]}"}
        reply = self.client.request(method, path, json=body, headers=headers)
        assert reply.status_code < 500, reply.text
        asked = f"{path} {body}"  # an error may repeat what the caller itself sent
        for other, secrets in self.owned.items():
            if other != tenant:
                leaked = [s for s in secrets if s in reply.text and s not in asked]
                assert not leaked, f"{tenant} saw {other}'s {leaked} in {method} {path}"
        return reply

    def secret(self, tenant: str) -> str:
        marker = f"zq{tenant}{next(self.counter)}x"
        self.owned[tenant].add(marker)
        return marker


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    ring = KeyRing({key: Tenant(name, [f"{name}-docs"]) for name, key in TENANTS.items()})
    app = create_app(conftest.settings(tmp_path_factory.mktemp("tenants"), keys=ring))
    with TestClient(app) as client:
        world = World(client)
        for name in TENANTS:
            assert world.call(name, "POST", "/collections", {"name": f"{name}-docs"}).status_code
        yield world


tenant = st.sampled_from(sorted(TENANTS))
collection = st.sampled_from([f"{t}-docs" for t in TENANTS] + ["missing"])
words = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)
user = st.sampled_from(USERS)
step = st.one_of(
    st.tuples(st.just("add_doc"), tenant, collection, words),
    st.tuples(st.just("search"), tenant, collection, words),
    st.tuples(st.just("chat"), tenant, collection, words),
    st.tuples(st.just("collections"), tenant),
    st.tuples(st.just("info"), tenant, collection),
    st.tuples(st.just("add_memory"), tenant, user, words),
    st.tuples(st.just("search_memory"), tenant, user, words),
    st.tuples(st.just("list_memories"), tenant, st.one_of(st.none(), user)),
    st.tuples(
        st.just("touch_memory"),
        tenant,
        st.integers(0, 50),
        st.sampled_from(["get", "history", "patch", "delete"]),
    ),
    st.tuples(st.just("job"), tenant, st.integers(0, 20)),
)


def run(world: World, action: tuple) -> None:
    kind, who, *rest = action
    if kind == "add_doc":
        name, text = rest
        doc_id = world.secret(who)
        body = {"documents": [{"id": doc_id, "text": f"{text} {world.secret(who)}"}]}
        reply = world.call(who, "POST", f"/collections/{name}/documents", body)
        assert reply.status_code == (200 if name == f"{who}-docs" else 404)
        if reply.status_code != 200:
            world.owned[who].discard(doc_id)
    elif kind in ("search", "chat"):
        name, text = rest
        if kind == "search":
            reply = world.call(who, "POST", f"/collections/{name}/search", {"query": text, "k": 10})
        else:
            body = {"model": name, "messages": [{"role": "user", "content": text}]}
            reply = world.call(who, "POST", "/v1/chat/completions", body)
        assert reply.status_code == (200 if name == f"{who}-docs" else 404)
    elif kind == "collections":
        names = [c["name"] for c in world.call(who, "GET", "/collections").json()["collections"]]
        assert names == [f"{who}-docs"]
        models = [m["id"] for m in world.call(who, "GET", "/v1/models").json()["data"]]
        assert models == [f"{who}-docs"]
    elif kind == "info":
        reply = world.call(who, "GET", f"/collections/{rest[0]}")
        assert reply.status_code == (200 if rest[0] == f"{who}-docs" else 404)
    elif kind == "add_memory":
        name, text = rest
        reply = world.call(
            who, "POST", "/memories", {"text": f"{text} {world.secret(who)}", "user_id": name}
        )
        item = reply.json()[0]["item"]
        if reply.json()[0]["event"] == "ADD":
            world.owned[who].add(item["id"])
            world.memories[who].append(item["id"])
    elif kind == "search_memory":
        name, text = rest
        hits = world.call(
            who, "POST", "/memories/search", {"query": text, "user_id": name, "k": 20}
        ).json()
        assert all(h["id"] in world.memories[who] for h in hits)
    elif kind == "list_memories":
        path = "/memories?status=any&limit=10000" + (f"&user_id={rest[0]}" if rest[0] else "")
        items = world.call(who, "GET", path).json()
        assert {i["id"] for i in items} <= set(world.memories[who])
        if rest[0] is None:  # the tenant's count is its own, never more
            assert len(items) == len(world.memories[who])
    elif kind == "touch_memory":
        index, verb = rest
        everyone = [m for t in TENANTS for m in world.memories[t]]
        if not everyone:
            return
        memory_id = everyone[index % len(everyone)]
        mine = memory_id in world.memories[who]
        if verb == "get":
            reply = world.call(who, "GET", f"/memories/{memory_id}")
        elif verb == "history":
            reply = world.call(who, "GET", f"/memories/{memory_id}/history")
        elif verb == "patch":
            reply = world.call(who, "PATCH", f"/memories/{memory_id}", {"importance": 0.9})
        else:
            reply = world.call(who, "DELETE", f"/memories/{memory_id}")
        assert reply.status_code == (404 if not mine else reply.status_code)
        assert mine or reply.status_code == 404
    elif kind == "job":
        if rest[0] % 5 == 0:
            body = {
                "documents": [{"id": world.secret(who), "text": world.secret(who)}],
                "background": True,
            }
            reply = world.call(who, "POST", f"/collections/{who}-docs/documents", body)
            world.owned[who].add(reply.json()["id"])
            world.jobs.append(reply.json()["id"])
        elif world.jobs:
            job_id = world.jobs[rest[0] % len(world.jobs)]
            reply = world.call(who, "GET", f"/jobs/{job_id}")
            assert reply.status_code == (200 if job_id in world.owned[who] else 404)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=st.lists(step, min_size=1, max_size=12))
def test_no_tenant_sees_another_tenants_data(world, actions):
    for action in actions:
        run(world, action)
