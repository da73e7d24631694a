"""add(..., infer=True) against a scripted OpenAI-compatible LLM over real HTTP on 127.0.0.1."""

import json
import re

import pytest

from ragmem import HashingEmbedder
from ragmem.agents import Memory

pytest.importorskip("tiktoken")
from ragmem.llms.openai import OpenAIChat
from tests.remote import fake_openai
from tests.remote.fake_openai import FakeOpenAI

EXTRACT = "Extract the durable facts"
MEMORY_LINE = re.compile(r"memory_id (\w+): (.*)")


class Script:
    """Answers chat requests with the next scripted reply (a string or a function of the
    prompt); the fake server does the HTTP."""

    def __init__(self):
        self.replies = []
        self.prompts = []

    def __call__(self, prompt):
        self.prompts.append(prompt)
        reply = self.replies.pop(0)
        return reply(prompt) if callable(reply) else reply


@pytest.fixture(scope="module")
def server():
    fake = FakeOpenAI()
    script = Script()
    original = fake.app

    def app(request):
        reply = original(request)
        if request.path.endswith("/chat/completions") and reply.status == 200:
            prompt = request.json["messages"][-1]["content"]
            reply.body["choices"][0]["message"]["content"] = script(prompt)
        return reply

    fake.server.app = app
    fake.server.start()
    fake.script = script
    yield fake
    fake.server.stop()


@pytest.fixture
def script(server):
    server.script.replies.clear()
    server.script.prompts.clear()
    return server.script


@pytest.fixture
def memory(server):
    llm = OpenAIChat("gpt-4o-mini", base_url=server.server.url + "/v1", api_key=fake_openai.KEY)
    return Memory(embedder=HashingEmbedder(128), llm=llm)


def decisions(*items):
    return json.dumps({"decisions": [{"fact": f, "event": e, "memory_id": m} for f, e, m in items]})


def test_add_update_delete_none_each_in_history_and_reversible(memory, script):
    script.replies += [
        '["Ana lives in Porto", "Ana likes sushi"]',
        decisions((0, "ADD", None), (1, "ADD", None)),
    ]
    porto, sushi = memory.add("I live in Porto and love sushi", user_id="ana", infer=True)
    assert [porto.event, sushi.event] == ["ADD", "ADD"]

    script.replies += ['["Ana lives in Braga"]', decisions((0, "UPDATE", porto.item.id))]
    (moved,) = memory.add("I moved to Braga", user_id="ana", infer=True)
    assert moved.event == "UPDATE"
    assert moved.superseded == porto.item.id
    assert f"memory_id {porto.item.id}: Ana lives in Porto" in script.prompts[-1]
    assert [h.text for h in memory.search("where does Ana live", user_id="ana", k=1)] == [
        "Ana lives in Braga"
    ]
    old = memory.get(porto.item.id)
    assert (old.status, old.superseded_by) == ("superseded", moved.item.id)
    assert memory.history(porto.item.id)[-1].detail["decision"] == "UPDATE"

    script.replies += ['["Ana no longer likes sushi"]', decisions((0, "DELETE", sushi.item.id))]
    (gone,) = memory.add("I stopped liking sushi", user_id="ana", infer=True)
    assert gone.event == "DELETE"
    assert memory.get(sushi.item.id).status == "deleted"
    assert memory.history(sushi.item.id)[-1].event == "DELETE"

    script.replies += ['["Ana lives in Braga"]', decisions((0, "NONE", moved.item.id))]
    (same,) = memory.add("Braga is my home", user_id="ana", infer=True)
    assert same.event == "NONE"
    assert memory.history(moved.item.id)[-1].event == "NONE"

    memory.restore(sushi.item.id)  # every decision can be undone
    memory.restore(porto.item.id)
    assert memory.get(sushi.item.id).status == "active"
    assert memory.get(porto.item.id).valid_to is None
    assert [e.event for e in memory.history(porto.item.id)][-1] == "RESTORE"


@pytest.mark.parametrize(
    "bad",
    [
        "not json at all",
        '{"decisions": [{"fact": 0, "event": "DEL',  # truncated
        '{"decisions": [{"fact": 0, "event": "DESTROY", "memory_id": null}]}',
        '{"decisions": [{"fact": "0", "event": "DELETE", "memory_id": "x"}]}',
        '{"decisions": [{"fact": 0, "event": "DELETE", "memory_id": "x", "why": 1}]}',
        '{"decisions": []}',
        '{"decisions": [{"fact": 0, "event": "UPDATE", "memory_id": null}]}',
        "[" * 5000,
    ],
)
def test_malformed_decisions_are_retried_once_then_added(memory, script, bad):
    (kept,) = memory.add("I live in Porto", user_id="ana")
    script.replies += ['["Ana lives in Braga"]', bad, bad]
    (change,) = memory.add("I moved to Braga", user_id="ana", infer=True)
    assert change.event == "ADD"
    assert memory.get(kept.item.id).status == "active"  # never a destructive fallback
    assert len(script.prompts) == 3


def test_a_retry_may_succeed(memory, script):
    (kept,) = memory.add("Ana lives in Porto", user_id="ana")
    script.replies += ['["Ana lives in Braga"]', "oops", decisions((0, "UPDATE", kept.item.id))]
    (change,) = memory.add("I moved to Braga", user_id="ana", infer=True)
    assert change.event == "UPDATE"


def test_a_decision_naming_another_scope_is_refused(memory, script):
    (bobs,) = memory.add("Bob lives in Porto", user_id="bob")
    (anas,) = memory.add("Ana lives in Porto", user_id="ana", agent_id="helper")
    hostile = decisions((0, "DELETE", bobs.item.id))
    script.replies += ['["Ana lives in Braga"]', hostile, decisions((0, "DELETE", anas.item.id))]
    (change,) = memory.add("moved", user_id="ana", infer=True)
    assert change.event == "ADD"
    assert memory.get(bobs.item.id).status == "active"
    assert memory.get(anas.item.id).status == "active"  # another agent's scope: not shown
    assert bobs.item.id not in script.prompts[1]


def test_unusable_fact_extraction_keeps_the_content(memory, script):
    script.replies += ["I cannot", '{"facts": 1}']
    (change,) = memory.add("I play chess on Sundays", user_id="ana", infer=True)
    assert change.event == "ADD"
    assert change.item.text == "I play chess on Sundays"


SUBJECTS = [
    ("lives in", ["Paris", "Berlin", "Lisbon", "Oslo", "Rome", "Porto", "Madrid", "Vienna",
                  "Prague", "Dublin"], "Where does the user live?"),
    ("likes to eat", ["sushi", "ramen", "pizza", "tacos", "curry", "paella", "falafel",
                      "dumplings", "pho", "risotto"], "What food does the user like?"),
    ("works as a", ["nurse", "teacher", "pilot", "chef", "lawyer", "baker", "plumber",
                    "designer", "dentist", "farmer"], "What is the user's job?"),
    ("drives a", ["Volvo", "Fiat", "Tesla", "Honda", "Skoda", "Mazda", "Renault", "Kia",
                  "Seat", "Opel"], "What car does the user drive?"),
    ("has a pet", ["cat", "dog", "parrot", "rabbit", "hamster", "turtle", "goldfish",
                   "lizard", "ferret", "pony"], "What pet does the user have?"),
]  # fmt: skip
DISTRACTORS = [
    "The user enjoys long walks on the beach",
    "The user's sister is called Maria",
    "The user plays the guitar on weekends",
]


def _pairs():
    for verb, values, question in SUBJECTS:
        for n in range(len(values)):
            old, new = values[n], values[(n + 3) % len(values)]
            for tense in ("now", "these days"):
                yield f"The user {verb} {old}", f"The user {verb} {new} {tense}", question


def perfect_llm(prompt):
    """What a faithful LLM answers: the content as one fact; UPDATE the memory shown that
    shares the fact's first four words, else ADD."""
    if prompt.startswith(EXTRACT):
        return json.dumps([prompt.rsplit("\n", 1)[-1]])
    fact = re.search(r"Fact 0: (.*)", prompt).group(1)
    for memory_id, text in MEMORY_LINE.findall(prompt):
        if text.split()[:4] == fact.split()[:4]:
            return decisions((0, "UPDATE", memory_id))
    return decisions((0, "ADD", None))


def test_supersession_suite_with_a_faithful_llm(memory, script):
    pairs = list(_pairs())
    assert len(pairs) >= 100
    right = 0
    for n, (old, new, question) in enumerate(pairs):
        user = f"user{n}"
        script.replies += [perfect_llm] * 6
        for text in [old, DISTRACTORS[n % len(DISTRACTORS)], new]:
            memory.add(text, user_id=user, infer=True)
        hits = memory.search(question, user_id=user, k=5)
        texts = [h.text for h in hits]
        right += new in texts and old not in texts
    assert right == len(pairs)
