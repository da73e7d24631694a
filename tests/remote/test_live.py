"""Live calls to the real APIs: run only with a key in the environment (never in CI)."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.integration


@pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY")
def test_openai_live():
    pytest.importorskip("openai")
    from ragmem.embedders.openai import OpenAIEmbedder
    from ragmem.llms import Message
    from ragmem.llms.openai import OpenAIChat

    vectors = OpenAIEmbedder("text-embedding-3-small", dimensions=256).embed(["hello", "world"])
    assert vectors.shape == (2, 256)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    reply = OpenAIChat("gpt-4o-mini", max_tokens=5).complete([Message(role="user", content="Hi")])
    assert reply


@pytest.mark.skipif(
    not (os.environ.get("CO_API_KEY") or os.environ.get("COHERE_API_KEY")),
    reason="needs CO_API_KEY",
)
def test_cohere_live():
    pytest.importorskip("cohere")
    from ragmem.embedders.cohere import CohereEmbedder
    from ragmem.retrievers.cohere import CohereReranker
    from ragmem.types import Hit

    vectors = CohereEmbedder("embed-v4.0", output_dimension=256).embed(["hello"], purpose="query")
    assert vectors.shape == (1, 256)
    hits = [Hit(id="a", score=0, text="Paris is in France"), Hit(id="b", score=0, text="cats")]
    assert CohereReranker().rerank("capital of France", hits)[0].id == "a"
