"""Agent memory: long-term scoped memory, a short-term buffer and chat glue."""

from ragmem.agents.buffer import ConversationBuffer
from ragmem.agents.memory import Memory, MemoryChange
from ragmem.agents.records import HistoryEvent, MemoryItem

__all__ = ["ConversationBuffer", "HistoryEvent", "Memory", "MemoryChange", "MemoryItem"]
