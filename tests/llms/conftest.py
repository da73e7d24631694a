"""The fake OpenAI-compatible and Cohere servers of tests/remote serve the chat tests too."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.remote.conftest import (
    FAST_RETRY,
    cohere_fake,
    cohere_server,
    openai_fake,
    openai_server,
)

if TYPE_CHECKING:
    from ragmem.llms import LLM

__all__ = ["cohere_fake", "cohere_server", "openai_fake", "openai_server", "sync_only_chat"]


def sync_only_chat(vendor: str, url: str) -> LLM:
    """A chat adapter given only a sync SDK client, against the fake server at ``url``."""
    import cohere
    import openai

    from ragmem.llms.cohere import CohereChat
    from ragmem.llms.openai import OpenAIChat
    from tests.remote import fake_cohere, fake_openai

    if vendor == "openai":
        client = openai.OpenAI(api_key=fake_openai.KEY, base_url=url + "/v1")
        return OpenAIChat("gpt-4o-mini", client=client, retry=FAST_RETRY)
    co = cohere.ClientV2(api_key=fake_cohere.KEY, base_url=url)
    return CohereChat("command-a-03-2025", client=co, retry=FAST_RETRY)
