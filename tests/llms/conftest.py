"""The fake OpenAI-compatible and Cohere servers of tests/remote serve the chat tests too."""

from tests.remote.conftest import cohere_fake, cohere_server, openai_fake, openai_server

__all__ = ["cohere_fake", "cohere_server", "openai_fake", "openai_server"]
