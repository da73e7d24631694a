"""EmbedderContract: the behaviour every Embedder must show (built-in and plugins).

Subclass it and provide an ``embedder`` fixture::

    class TestMyEmbedder(EmbedderContract):
        @pytest.fixture
        def embedder(self):
            return MyEmbedder(...)
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import numpy as np
import pytest

from ragmem.errors import InvalidInputError

if TYPE_CHECKING:
    from ragmem.embedders.base import Embedder

__all__ = ["EmbedderContract"]

TEXTS = [
    "The cat sat on the mat.",
    "Quantum chromodynamics describes the strong interaction.",
    "Zürich liegt am Zürichsee.",
    "東京は日本の首都です。",
    "emoji 🧪🚀 and symbols ∑∫",
]


class EmbedderContract:
    """Shared tests for Embedder implementations."""

    # Unit-length output is the default for every built-in embedder; a plugin that
    # returns raw vectors sets this to False.
    normalized: bool = True

    @pytest.fixture
    def embedder(self) -> Embedder:
        raise NotImplementedError("subclasses provide an `embedder` fixture")

    def test_shape_and_dtype(self, embedder: Embedder) -> None:
        vectors = embedder.embed(TEXTS)
        assert vectors.shape == (len(TEXTS), embedder.dimensions)
        assert vectors.dtype == np.float32
        assert np.isfinite(vectors).all()
        if self.normalized:
            np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)

    def test_deterministic_and_order_preserving(self, embedder: Embedder) -> None:
        together = embedder.embed(TEXTS)
        reversed_ = embedder.embed(TEXTS[::-1])[::-1]
        one_by_one = np.stack([embedder.embed([t])[0] for t in TEXTS])
        np.testing.assert_allclose(together, reversed_, atol=1e-4)
        np.testing.assert_allclose(together, one_by_one, atol=1e-4)

    def test_batches_larger_than_batch_size(self, embedder: Embedder) -> None:
        texts = [
            f"sentence number {i} about topic {i % 7}" for i in range(embedder.batch_size * 2 + 3)
        ]
        vectors = embedder.embed(texts)
        assert vectors.shape == (len(texts), embedder.dimensions)
        np.testing.assert_allclose(vectors[-1], embedder.embed(texts[-1:])[0], atol=1e-4)

    def test_similar_texts_are_closer(self, embedder: Embedder) -> None:
        a, b, c = embedder.embed(
            ["the weather is sunny today", "today the weather is sunny", "tax law of 1987"]
        )
        assert float(a @ b) > float(a @ c)

    def test_query_purpose(self, embedder: Embedder) -> None:
        vector = embedder.embed_query("what is the capital of Japan?")
        assert vector.shape == (embedder.dimensions,)
        assert embedder.embed(["x y"], purpose="query").shape == (1, embedder.dimensions)

    def test_empty_list(self, embedder: Embedder) -> None:
        assert embedder.embed([]).shape == (0, embedder.dimensions)

    @pytest.mark.parametrize("bad", [[""], ["ok", "   "], "a bare string", [None], [b"bytes"]])
    def test_bad_input_is_rejected(self, embedder: Embedder, bad: object) -> None:
        with pytest.raises(InvalidInputError):
            embedder.embed(bad)  # type: ignore[arg-type]

    def test_bad_purpose_is_rejected(self, embedder: Embedder) -> None:
        with pytest.raises(InvalidInputError):
            embedder.embed(["x"], purpose="search")  # type: ignore[arg-type]

    def test_async_equals_sync(self, embedder: Embedder) -> None:
        sync = embedder.embed(TEXTS, purpose="query")
        got = asyncio.run(embedder.embed_async(TEXTS, purpose="query"))
        np.testing.assert_allclose(got, sync, atol=1e-4)

    def test_repr_has_no_secrets(self, embedder: Embedder) -> None:
        text = repr(embedder)
        assert "sk-" not in text
        assert "api_key" not in text.lower() or "api_key=None" in text
