"""Every tool through the SDK's own client, connected in-process (fast, same protocol code)."""

import pytest
from mcp import Client

from ragmem.mcp_server.toolbox import Principal, Toolbox
from ragmem.mcp_server.tools import build_server

from .helpers import call, exercise_tools, fails


@pytest.fixture
def toolbox(tmp_path):
    box = Toolbox(tmp_path / "store", embedder="hashing")
    yield box
    box.close()


def client_for(toolbox, user_id="ana", **options):
    return Client(build_server(toolbox, lambda: Principal(user_id=user_id, **options)))


async def test_every_tool_answers_with_text_and_structured_content(toolbox):
    async with client_for(toolbox) as client:
        await exercise_tools(client)


async def test_another_user_sees_nothing_of_the_first(toolbox):
    async with client_for(toolbox, "ana") as ana:
        ids = await exercise_tools(ana)
    async with client_for(toolbox, "bob") as bob:
        assert (await call(bob, "list_memories", {"status": "all"}))["memories"] == []
        assert (await call(bob, "search_memory", {"query": "Porto Lisbon Rita"}))["hits"] == []
        for memory_id in ids.values():
            for tool in ("get_memory", "memory_history", "delete_memory"):
                await fails(bob, tool, {"memory_id": memory_id}, "unknown memory id")
            await fails(bob, "update_memory", {"memory_id": memory_id, "text": "x"}, "unknown")
            await fails(bob, "purge_memories", {"ids": [memory_id]}, "unknown memory id")
    async with client_for(toolbox, "ana") as ana:  # untouched by bob's attempts
        got = await call(ana, "get_memory", {"memory_id": ids["new"]})
        assert got["memory"]["status"] == "active"


async def test_an_agent_scope_hides_the_users_other_agents(toolbox):
    async with client_for(toolbox, "ana", agent_id="travel") as travel:
        added = await call(travel, "add_memory", {"text": "Prefers aisle seats"})
    memory_id = added["changes"][0]["id"]
    async with client_for(toolbox, "ana", agent_id="cooking") as cooking:
        await fails(cooking, "get_memory", {"memory_id": memory_id}, "unknown memory id")
        assert (await call(cooking, "search_memory", {"query": "aisle seats"}))["hits"] == []
    async with client_for(toolbox, "ana") as ana:  # the user's own view spans agents
        assert (await call(ana, "get_memory", {"memory_id": memory_id}))["memory"]["agent_id"] == (
            "travel"
        )


async def test_a_read_only_principal_cannot_write(toolbox):
    async with client_for(toolbox, "ana", can_write=False) as reader:
        await fails(reader, "add_memory", {"text": "x"}, "read-only")
        await fails(reader, "add_document", {"text": "x"}, "read-only")
        assert (await call(reader, "list_memories", {}))["memories"] == []


async def test_collections_outside_the_principals_list_do_not_exist_for_it(toolbox):
    async with client_for(toolbox) as owner:
        await call(owner, "add_document", {"text": "secret plans", "collection": "private"})
        await call(owner, "add_document", {"text": "public notes", "collection": "public"})
    async with client_for(toolbox, collections=frozenset({"public"})) as guest:
        assert (await call(guest, "list_collections", {}))["collections"] == ["public"]
        hits = (await call(guest, "search_documents", {"query": "secret plans"}))["hits"]
        assert {h["collection"] for h in hits} == {"public"}
        await fails(guest, "search_documents", {"query": "x", "collection": "private"}, "unknown")
        await fails(guest, "add_document", {"text": "x", "collection": "private"}, "unknown")


async def test_a_collection_indexed_meanwhile_by_another_pipeline_is_seen(toolbox, tmp_path):
    from ragmem import Document, RAGPipeline

    async with client_for(toolbox) as client:
        await call(client, "add_document", {"text": "first text about apples", "collection": "c"})
        assert len((await call(client, "search_documents", {"query": "apples"}))["hits"]) == 1
        with RAGPipeline(tmp_path / "store" / "c") as writer:  # e.g. `ragmem index`
            writer.ingest([Document(id="b", text="second text about apples")])
        hits = (await call(client, "search_documents", {"query": "apples"}))["hits"]
        assert {h["doc_id"] for h in hits} == {"b", toolbox_doc_id("first text about apples")}


def toolbox_doc_id(text):
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def test_purge_erases_ids_a_session_or_the_whole_scope(toolbox):
    async with client_for(toolbox, "ana") as ana:
        ids = await exercise_tools(ana)
        await call(ana, "add_memory", {"text": "Train on Tuesday", "session_id": "s2"})
        await call(ana, "add_memory", {"text": "Bus on Friday", "session_id": "s2"})
        assert (await call(ana, "purge_memories", {"ids": [ids["old"]]}))["purged"] == 1
        await fails(ana, "get_memory", {"memory_id": ids["old"]}, "unknown memory id")
        assert (await call(ana, "purge_memories", {"session_id": "s2"}))["purged"] == 2
    async with client_for(toolbox, "bob") as bob:
        await call(bob, "add_memory", {"text": "Bob likes jazz"})
    async with client_for(toolbox, "ana") as ana:
        assert (await call(ana, "purge_memories", {"everything": True}))["purged"] >= 2
        assert (await call(ana, "list_memories", {"status": "all"}))["memories"] == []
    async with client_for(toolbox, "bob") as bob:  # another user's memories are untouched
        assert len((await call(bob, "list_memories", {}))["memories"]) == 1


async def test_search_by_time_range_as_of_and_min_score(toolbox):
    async with client_for(toolbox) as client:
        await call(
            client,
            "add_memory",
            {"text": "Works at Acme", "key": "job", "observed_at": "2023-01-10T00:00:00Z"},
        )
        await call(
            client,
            "add_memory",
            {"text": "Works at Globex", "key": "job", "observed_at": "2025-06-01T00:00:00Z"},
        )
        early = await call(client, "search_memory", {"query": "works at", "before": "2024-01-01"})
        assert [h["text"] for h in early["hits"]] == []  # Acme was superseded: not current
        then = await call(client, "search_memory", {"query": "works at", "as_of": "2024-01-01"})
        assert [h["text"] for h in then["hits"]] == ["Works at Acme"]
        late = await call(client, "search_memory", {"query": "works at", "after": "2024-01-01"})
        assert [h["text"] for h in late["hits"]] == ["Works at Globex"]
        strict = await call(client, "search_memory", {"query": "zzzz qqqq", "min_score": 0.99})
        assert strict["hits"] == []


async def test_tenants_keep_their_memories_in_folders_of_their_own(toolbox, tmp_path):
    async with client_for(toolbox, tenant="acme") as acme:
        added = await call(acme, "add_memory", {"text": "Acme renews in March"})
    memory_id = added["changes"][0]["id"]
    async with client_for(toolbox, tenant="globex") as globex:  # the same user id, elsewhere
        await fails(globex, "get_memory", {"memory_id": memory_id}, "unknown memory id")
        assert (await call(globex, "search_memory", {"query": "renews"}))["hits"] == []
    assert (tmp_path / "store" / "_memory" / "acme" / "memory.sqlite").is_file()
    async with client_for(toolbox, tenant="../escape") as bad:
        await fails(bad, "list_memories", {}, "invalid tenant name")


async def test_an_unexpected_failure_is_a_tool_error_without_internals(toolbox, monkeypatch):
    def broken(who):
        raise RuntimeError("internal detail /secret/path")

    async with client_for(toolbox) as client:
        monkeypatch.setattr(toolbox.documents, "list", broken)
        text = await fails(client, "list_collections", {}, "list_collections")
        assert "secret" not in text
        monkeypatch.undo()
        assert (await call(client, "list_collections", {}))["collections"] == []


async def test_infer_lets_the_configured_llm_extract_the_facts(tmp_path, monkeypatch):
    pytest.importorskip("openai")
    from ragmem.registry import get_llm
    from tests.remote.fake_openai import KEY, FakeOpenAI
    from tests.remote.fakeserver import Fault

    def facts(body):
        body["choices"][0]["message"]["content"] = '["Ana lives in Lisbon", "Ana drinks tea"]'
        return body

    fake = FakeOpenAI()
    fake.server.start()
    fake.server.faults.append(Fault.change(facts))  # the first reply (the extraction) only
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    box = Toolbox(
        tmp_path / "store",
        embedder="hashing",
        llm=get_llm("openai", model="gpt-4o-mini", base_url=fake.server.url + "/v1"),
    )
    try:
        async with client_for(box) as client:
            said = "Hi! I'm Ana, I moved to Lisbon and I drink a lot of tea."
            await call(client, "add_memory", {"text": said, "infer": True})
            stored = await call(client, "list_memories", {})
            texts = {m["text"] for m in stored["memories"]}
            assert {"Ana lives in Lisbon", "Ana drinks tea"} <= texts
            assert said not in texts
            assert fake.server.bodies("/v1/chat/completions")
    finally:
        box.close()
        fake.server.stop()
