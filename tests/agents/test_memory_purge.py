"""purge hard-deletes: no byte of a purged text survives in any file of the memory directory."""

import io

import pytest

from ragmem import HashingEmbedder, InvalidInputError
from ragmem.agents import Memory
from tests.agents.helpers import Clock, TokenHashingEmbedder

SECRETS = [
    "zebracorn passport number XQ-7781-PLUM",
    "wobbleferry bank pin 4471 and the blue fox",
    "quintaquill diagnosis filed at the clinic",
]


def _bytes_everywhere(path):
    return {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}


def _leaks(path, needles):
    found = []
    for file, data in _bytes_everywhere(path).items():
        for needle in needles:
            for form in (needle.encode(), needle.encode("utf-16-le")):
                if form in data:
                    found.append((file.name, needle))
            # long fragments too: a text may be split across pages or tokenised
            for word in needle.split():
                if len(word) >= 9 and word.encode() in data:
                    found.append((file.name, word))
    return found


@pytest.mark.parametrize("embedder", [HashingEmbedder(32), TokenHashingEmbedder(32)])
def test_purged_texts_leave_no_byte_behind(tmp_path, embedder):
    clock = Clock()
    memory = Memory(tmp_path, embedder=embedder, clock=clock)
    kept = memory.add("ana keeps this note about tea", user_id="ana")[0].item
    first = memory.add(SECRETS[0], user_id="bob", session_id="s1")[0].item
    memory.update(first.id, SECRETS[0] + " (renewed)")  # history keeps the old text
    memory.add(SECRETS[1], user_id="bob", key="pin")
    memory.add(SECRETS[1] + " again", user_id="bob")
    gone = memory.add(SECRETS[2], user_id="bob", agent_id="helper")[0].item
    memory.delete(gone.id)  # soft-deleted first: purge still removes it
    assert _leaks(tmp_path, SECRETS)  # the scan can see them before the purge
    held = memory.list(user_id="bob", status=None)  # the repeat may have merged
    assert memory.purge(user_id="bob") == len(held) >= 3
    assert memory.list(user_id="bob", status=None) == []
    assert memory.search("passport bank diagnosis", user_id="bob") == []
    assert [h.id for h in memory.search("tea note", user_id="ana")] == [kept.id]
    memory.close()
    assert _leaks(tmp_path, SECRETS) == []
    with Memory(tmp_path, embedder=embedder, clock=clock) as reopened:
        assert reopened.list(user_id="bob", status=None) == []
        assert [m.id for m in reopened.list(status=None)] == [kept.id]
        assert reopened.store.count() == 1


def test_purge_by_ids_and_session(tmp_path):
    memory = Memory(tmp_path, embedder=HashingEmbedder(32))
    a = memory.add("alpha fact", user_id="u", session_id="s1")[0].item
    b = memory.add("beta fact", user_id="u", session_id="s2")[0].item
    c = memory.add("gamma fact", user_id="u", session_id="s2")[0].item
    assert memory.purge(ids=[a.id, "unknown"]) == 1
    assert memory.purge(session_id="s2", ids=[b.id]) == 1
    assert [m.id for m in memory.list(user_id="u", status=None)] == [c.id]
    with pytest.raises(InvalidInputError):
        memory.purge()
    with pytest.raises(InvalidInputError):
        memory.purge(ids="abc")
    memory.close()


def test_export_leaves_deleted_memories_out_unless_asked():
    memory = Memory(embedder=HashingEmbedder(32))
    memory.add("fact one", user_id="u")
    gone = memory.add("fact two", user_id="u")[0].item
    memory.delete(gone.id)
    out = io.StringIO()
    assert memory.export(out) == 1
    assert "fact two" not in out.getvalue()
    out = io.StringIO()
    assert memory.export(out, include_deleted=True) == 2
