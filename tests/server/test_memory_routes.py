"""Memory over HTTP: add, search, get, list, update, history, delete and purge."""

from __future__ import annotations


def test_add_search_get_list(client):
    added = client.post("/memories", json={"text": "I live in Lisbon", "user_id": "ana"})
    assert added.status_code == 200
    change = added.json()[0]
    assert change["event"] == "ADD"
    memory_id = change["item"]["id"]
    client.post("/memories", json={"text": "I play the cello", "user_id": "ana"})
    client.post("/memories", json={"text": "I live in Oslo", "user_id": "ben"})
    hits = client.post("/memories/search", json={"query": "where do I live", "user_id": "ana"})
    assert hits.json()[0]["id"] == memory_id
    assert "relevance" in hits.json()[0]["explain"]
    assert all(h["metadata"]["user_id"] == "ana" for h in hits.json())
    assert client.get(f"/memories/{memory_id}").json()["text"] == "I live in Lisbon"
    assert len(client.get("/memories?user_id=ana").json()) == 2
    assert len(client.get("/memories").json()) == 3


def test_messages_and_duplicates(client):
    messages = [
        {"role": "user", "content": "My dog is called Rex"},
        {"role": "assistant", "content": "Nice name!"},
    ]
    changes = client.post("/memories", json={"messages": messages, "user_id": "u"}).json()
    assert [c["item"]["metadata"]["role"] for c in changes] == ["user", "assistant"]
    again = client.post("/memories", json={"text": "my dog is called rex", "user_id": "u"}).json()
    assert again[0]["event"] == "MERGE"
    both = client.post("/memories", json={"text": "x", "messages": messages, "user_id": "u"})
    assert both.status_code == 400


def test_update_history_delete(client):
    memory_id = client.post("/memories", json={"text": "I like tea", "user_id": "u"}).json()[0][
        "item"
    ]["id"]
    updated = client.patch(f"/memories/{memory_id}", json={"text": "I like coffee"})
    assert updated.json()["text"] == "I like coffee"
    events = [e["event"] for e in client.get(f"/memories/{memory_id}/history").json()]
    assert events == ["ADD", "UPDATE"]
    assert client.delete(f"/memories/{memory_id}").status_code == 204
    hits = client.post("/memories/search", json={"query": "coffee", "user_id": "u"}).json()
    assert hits == []
    assert client.get("/memories?status=deleted").json()[0]["id"] == memory_id
    assert client.delete("/memories/unknown").status_code == 404
    assert client.get("/memories/unknown/history").status_code == 404


def test_search_needs_a_scope(client):
    reply = client.post("/memories/search", json={"query": "x"})
    assert reply.status_code == 400
    assert "user_id" in reply.json()["error"]["message"]


def test_min_score_keeps_only_close_memories(client):
    client.post("/memories", json={"text": "I live in Lisbon", "user_id": "u"})
    client.post("/memories", json={"text": "Quantum chromodynamics", "user_id": "u"})
    every = client.post("/memories/search", json={"query": "live Lisbon", "user_id": "u"}).json()
    assert len(every) == 2
    threshold = (every[0]["score"] + every[1]["score"]) / 2
    body = {"query": "live Lisbon", "user_id": "u", "min_score": threshold}
    kept = client.post("/memories/search", json=body).json()
    assert [h["id"] for h in kept] == [every[0]["id"]]


def test_purge_erases_a_scope(client):
    client.post("/memories", json={"text": "secret one", "user_id": "gone"})
    client.post("/memories", json={"text": "kept", "user_id": "stays"})
    reply = client.post("/memories/purge", json={"user_id": "gone"})
    assert reply.json() == {"purged": 1}
    assert client.get("/memories?user_id=gone&status=any").json() == []
    assert len(client.get("/memories?user_id=stays").json()) == 1


def test_purge_needs_a_scope_or_ids(client):
    assert client.post("/memories/purge", json={}).status_code == 400
