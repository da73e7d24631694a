"""Chat models. Vendor adapters load only when imported by name."""

from ragmem._util import lazy_exports
from ragmem.llms.base import LLM, AsyncReplyStream, Message, Reply, ReplyStream, Usage

__all__ = ["LLM", "AsyncReplyStream", "Message", "Reply", "ReplyStream", "Usage"]

# Adapters whose modules import an optional SDK load on first attribute access, so
# ``from ragmem.llms import OpenAIChat`` works without importing the SDK up front.
_LAZY = {
    "OpenAIChat": "ragmem.llms.openai",
    "CohereChat": "ragmem.llms.cohere",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
