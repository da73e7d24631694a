"""Fixtures: fake OpenAI-compatible and Cohere servers on 127.0.0.1, and a fast retry policy."""

from __future__ import annotations

import pytest

from ragmem.remote import RetryPolicy

# Tiny sleeps keep the fault matrix fast; the bound on total time is still enforced.
FAST_RETRY = RetryPolicy(max_attempts=4, initial_delay=0.001, max_delay=0.01, max_elapsed=10.0)


@pytest.fixture(scope="session")
def openai_fake():
    pytest.importorskip("tiktoken")
    from tests.remote.fake_openai import FakeOpenAI

    fake = FakeOpenAI(extra_models={"nomic-embed-text": 768})
    fake.server.start()
    yield fake
    fake.server.stop()


@pytest.fixture
def openai_server(openai_fake):
    openai_fake.server.reset()
    openai_fake.server.delay = 0.0
    return openai_fake.server


@pytest.fixture(scope="session")
def cohere_fake():
    from tests.remote.fake_cohere import FakeCohere

    fake = FakeCohere()
    fake.server.start()
    yield fake
    fake.server.stop()


@pytest.fixture
def cohere_server(cohere_fake):
    cohere_fake.server.reset()
    cohere_fake.server.delay = 0.0
    return cohere_fake.server
