"""Agent memory: long-term scoped memory, a short-term buffer and chat glue."""

from ragmem.agents.buffer import ConversationBuffer
from ragmem.agents.chat import ChatReply, ChatSession, Remember
from ragmem.agents.memory import Memory, MemoryChange, MemoryInput
from ragmem.agents.records import HistoryEvent, MemoryItem

__all__ = [
    "ChatReply",
    "ChatSession",
    "ConversationBuffer",
    "HistoryEvent",
    "Memory",
    "MemoryChange",
    "MemoryInput",
    "MemoryItem",
    "Remember",
]
