"""Chat models. Vendor adapters load only when imported by name."""

from ragmem.llms.base import LLM, Message

__all__ = ["LLM", "Message"]
