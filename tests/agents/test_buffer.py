import pytest

from ragmem import HashingEmbedder, InvalidInputError
from ragmem.agents import ConversationBuffer, Memory
from ragmem.llms import LLM, Message
from ragmem.tokens import WhitespaceTokenizer


class EchoSummary(LLM):
    def __init__(self):
        self.calls = 0

    def _complete(self, messages):
        self.calls += 1
        return f"summary {self.calls}"


def fill(buffer, n):
    added = [
        Message(role="user" if i % 2 else "assistant", content=f"turn {i} " + "word " * 5)
        for i in range(n)
    ]
    for message in added:
        buffer.add(message)
    return added


@pytest.mark.parametrize("budget", [12, 30, 57, 200])
def test_window_never_exceeds_budget_and_keeps_pins(budget):
    buffer = ConversationBuffer(max_tokens=budget, tokenizer=WhitespaceTokenizer())
    buffer.pin({"role": "system", "content": "be brief"})
    added = fill(buffer, 40)
    assert buffer.tokens() <= budget
    assert buffer.messages()[0].content == "be brief"
    kept = [m for m in buffer.messages() if m.role != "system"]
    assert buffer.evicted + kept == added  # oldest leave first, nothing is lost


def test_overflow_is_summarised_with_an_llm():
    llm = EchoSummary()
    buffer = ConversationBuffer(max_tokens=40, llm=llm)
    fill(buffer, 10)
    assert llm.calls >= 1
    window = buffer.messages()
    assert window[0].content.startswith("Summary of the earlier conversation: summary")
    assert buffer.tokens() <= 40


def test_overflow_moves_into_long_term_memory():
    memory = Memory(embedder=HashingEmbedder(64), near_duplicate=1.0)
    buffer = ConversationBuffer(max_tokens=30, memory=memory, scope={"user_id": "u"})
    fill(buffer, 12)
    stored = {m.text for m in memory.list(user_id="u")}
    assert stored == {m.content for m in buffer.evicted}
    assert stored


def test_bad_configuration():
    with pytest.raises(InvalidInputError):
        ConversationBuffer(0)
    with pytest.raises(InvalidInputError):
        ConversationBuffer(10, memory=Memory(embedder=HashingEmbedder(8)))
    buffer = ConversationBuffer(5)
    with pytest.raises(InvalidInputError):
        buffer.pin(Message(role="system", content="far too many words for this budget"))
