"""`ragmem mcp` as an MCP client starts it: a subprocess spoken to over stdin/stdout."""

from .helpers import call, exercise_tools, fails, stdio_client_for


async def test_every_tool_over_stdio_and_a_second_user_sees_nothing(tmp_path):
    store = tmp_path / "store"
    async with stdio_client_for(store, "--user-id", "ana") as ana:
        ids = await exercise_tools(ana)
    async with stdio_client_for(store, "--user-id", "bob") as bob:
        assert (await call(bob, "list_memories", {"status": "all"}))["memories"] == []
        assert (await call(bob, "search_memory", {"query": "where do I live"}))["hits"] == []
        for memory_id in ids.values():
            await fails(bob, "get_memory", {"memory_id": memory_id}, "unknown memory id")
            await fails(bob, "delete_memory", {"memory_id": memory_id}, "unknown memory id")
        # documents are shared by the store's users; memories are not
        assert (await call(bob, "list_collections", {}))["collections"] == ["faq", "manuals"]
    async with stdio_client_for(store, "--user-id", "ana") as ana:
        got = await call(ana, "get_memory", {"memory_id": ids["new"]})
        assert got["memory"]["text"] == "I moved to Porto"
