import asyncio
import threading

from ragmem import HashingEmbedder
from ragmem.agents import ChatSession, Memory
from ragmem.llms import LLM
from ragmem.retrievers.bm25 import BM25Retriever
from ragmem.tokens import WhitespaceTokenizer


class RecordingLLM(LLM):
    def __init__(self):
        self.prompts = []
        self.lock = threading.Lock()

    def _complete(self, messages):
        with self.lock:
            self.prompts.append(messages)
        return f"reply {len(self.prompts)}"


def make_session(llm, memory, **options):
    return ChatSession(
        llm,
        memory,
        user_id="ana",
        session_id="s1",
        tokenizer=WhitespaceTokenizer(),
        budget_tokens=300,
        answer_tokens=50,
        history_tokens=60,
        **options,
    )


def test_memories_and_documents_reach_the_prompt_within_budget():
    memory = Memory(embedder=HashingEmbedder(128))
    memory.add("Ana is allergic to peanuts", user_id="ana")
    memory.add("Bob is allergic to cats", user_id="bob")
    docs = BM25Retriever()
    docs.add(["recipe"], ["Peanut sauce recipe: peanuts, soy sauce, lime."])
    llm = RecordingLLM()
    session = make_session(llm, memory, retriever=docs)
    reply = session.send("Can I eat the peanut sauce?")
    assert reply.text == "reply 1"
    system = llm.prompts[0][0].content
    assert "Ana is allergic to peanuts" in system
    assert "Peanut sauce recipe" in system
    assert "Bob" not in system  # another user's memory never leaks in
    total = sum(WhitespaceTokenizer().count(m.content) + 4 for m in llm.prompts[0])
    assert total + 50 <= 300
    assert {s.doc_id for s in reply.sources} >= {"recipe"}


def test_turns_are_stored_and_history_is_kept():
    memory = Memory(embedder=HashingEmbedder(128), near_duplicate=1.0)
    llm = RecordingLLM()
    session = make_session(llm, memory, remember="both", rewrite_followups=False)
    session.send("My cat is called Miso")
    session.send("What is my cat called?")
    second = llm.prompts[1]
    assert [m.role for m in second[1:]] == ["user", "assistant", "user"]
    stored = [m.text for m in memory.list(user_id="ana")]
    assert stored[:2] == ["My cat is called Miso", "reply 1"]


def test_only_user_messages_are_remembered_by_default():
    memory = Memory(embedder=HashingEmbedder(128))
    session = make_session(RecordingLLM(), memory)
    session.send("My cat is called Miso")
    session.send("She is three years old")
    assert [m.text for m in memory.list(user_id="ana")] == [
        "My cat is called Miso",
        "She is three years old",
    ]
    silent = make_session(RecordingLLM(), Memory(embedder=HashingEmbedder(128)), remember="none")
    silent.send("nothing to keep")
    assert silent.memory.list(user_id="ana") == []


def test_recalled_memories_are_labelled_and_not_repeated_from_the_window():
    memory = Memory(embedder=HashingEmbedder(128))
    memory.add("Ana's cat Miso likes tuna", user_id="ana", timestamp=1_700_000_000)
    llm = RecordingLLM()
    session = make_session(llm, memory, rewrite_followups=False)
    session.send("Miso the cat needs food")
    prompt = llm.prompts[0][0].content
    assert "memory from 2023-11-14 (user ana)" in prompt
    assert "memory:" not in prompt
    session.send("What does Miso the cat eat?")
    system = llm.prompts[1][0].content
    assert "likes tuna" in system
    assert "Miso the cat needs food" not in system  # already in the window, not recalled again


class RewritingLLM(RecordingLLM):
    def _complete(self, messages):
        with self.lock:
            self.prompts.append(messages)
        if "standalone search query" in messages[-1].content:
            return "pricing for EU customers of the pro plan"
        return "answer"

    def _stream(self, messages):
        yield from ["an", "swer"]


def test_follow_ups_are_rewritten_and_the_rewrite_is_explained():
    memory = Memory(embedder=HashingEmbedder(128))
    memory.add("the pro plan costs 20 euros for EU customers", user_id="ana")
    llm = RewritingLLM()
    session = make_session(llm, memory)
    first = session.send("how much is the pro plan?")
    assert first.explain == {"query": "how much is the pro plan?", "rewritten": False}
    reply = session.send("and for EU customers?")
    assert reply.explain == {"query": "pricing for EU customers of the pro plan", "rewritten": True}
    assert "and for EU customers?" in llm.prompts[1][0].content
    assert reply.memories[0].text == "the pro plan costs 20 euros for EU customers"


def test_stream_and_async_twins():
    memory = Memory(embedder=HashingEmbedder(128))
    session = make_session(RewritingLLM(), memory)
    assert list(session.stream("hello there")) == ["an", "swer"]
    assert [m.text for m in memory.list(user_id="ana")] == ["hello there"]

    async def run():
        parts = [p async for p in session.stream_async("second message")]
        reply = await session.send_async("third message")
        return parts, reply

    parts, reply = asyncio.run(run())
    assert "".join(parts) == "answer"
    assert reply.text == "answer"
    assert reply.explain["rewritten"] is True
    assert len(memory.list(user_id="ana")) == 3


def test_async_and_threads_share_one_memory():
    memory = Memory(embedder=HashingEmbedder(128), near_duplicate=1.0)
    llm = RecordingLLM()

    def chat(user):
        session = ChatSession(llm, memory, user_id=user, tokenizer=WhitespaceTokenizer())
        for i in range(3):
            session.send(f"{user} message {i}")

    threads = [threading.Thread(target=chat, args=(f"user{n}",)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def async_chat():
        session = ChatSession(llm, memory, user_id="async", tokenizer=WhitespaceTokenizer())
        await asyncio.gather(*(session.send_async(f"async message {i}") for i in range(3)))

    asyncio.run(async_chat())
    for user in ["user0", "user1", "user2", "async"]:
        assert len(memory.list(user_id=user)) == 3
