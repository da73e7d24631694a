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
    session = make_session(llm, memory)
    session.send("My cat is called Miso")
    session.send("What is my cat called?")
    second = llm.prompts[1]
    assert [m.role for m in second[1:]] == ["user", "assistant", "user"]
    assert "Miso" in second[0].content  # recalled from long-term memory too
    stored = [m.text for m in memory.list(user_id="ana")]
    assert stored[:2] == ["My cat is called Miso", "reply 1"]


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
        assert len(memory.list(user_id=user)) == 6
