"""Without a key or an LLM, a newer memory on the same subject ranks above the older one,
and the older hit says ``possibly_superseded_by``."""

import pytest

from ragmem import HashingEmbedder
from ragmem.agents import Memory, MemoryInput
from tests.agents.supersession import DISTRACTORS, pairs


@pytest.fixture(scope="module")
def embedder():
    pytest.importorskip("onnxruntime")
    from ragmem.embedders.local import LocalEmbedder

    return LocalEmbedder()


def _current_first(memory):
    right = 0
    for n, (old, new, question) in enumerate(pairs()):
        user = f"user{n}"
        inputs = [MemoryInput(text=old, timestamp=1_600_000_000)]
        inputs += [MemoryInput(text=text, timestamp=1_650_000_000) for text in DISTRACTORS]
        inputs.append(MemoryInput(text=new, timestamp=1_700_000_000))
        memory.add_many(inputs, user_id=user)
        texts = [h.text for h in memory.search(question, user_id=user, k=5)]
        right += new in texts and (old not in texts or texts.index(new) < texts.index(old))
    return right / len(pairs())


def test_the_current_value_ranks_first_for_nine_pairs_in_ten(embedder):
    assert len(pairs()) >= 100
    assert _current_first(Memory(embedder=embedder, deduplicate=False)) >= 0.9


def test_without_the_rule_the_old_value_often_wins(embedder):
    # the rule is what puts the current value first: plain relevance does not
    assert _current_first(Memory(embedder=embedder, deduplicate=False, same_subject=None)) < 0.5


def test_the_older_hit_names_its_probable_successor():
    memory = Memory(embedder=HashingEmbedder(64), same_subject=0.3)
    old = memory.add("I live in Paris France", user_id="u", timestamp=1_600_000_000)[0].item
    new = memory.add("I live in Berlin now", user_id="u", timestamp=1_700_000_000)[0].item
    hits = {h.id: h for h in memory.search("I live in Paris France", user_id="u", k=5)}
    assert hits[old.id].metadata["possibly_superseded_by"] == new.id
    assert list(hits) == [new.id, old.id]
    assert memory.get(old.id).status == "active"  # nothing changed in the ledger
    other = memory.add("I live in Rome", user_id="someone else", timestamp=1_800_000_000)
    assert other[0].item.id not in hits
