"""A deterministic, dependency-free embedder for tests and examples."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

import numpy as np

from ragmem.embedders.base import Embedder, l2_normalize
from ragmem.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ragmem.types import Purpose, Vectors

__all__ = ["HashingEmbedder"]

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder(Embedder):
    """Feature hashing of lower-cased words and character trigrams into a unit vector.

    Texts that share words get similar vectors, the same text always gets the same
    vector on every machine and Python version (blake2b, not ``hash()``), and there
    is nothing to download. Not a semantic model: use it for tests and demos.

    Example:
        >>> e = HashingEmbedder(dimensions=64)
        >>> a, b, c = e.embed(["red apple", "red apples", "tax law"])
        >>> float(a @ b) > float(a @ c)
        True
    """

    def __init__(self, dimensions: int = 256, *, seed: int = 0, batch_size: int = 256) -> None:
        if dimensions < 1:
            raise ConfigurationError(f"dimensions must be positive, got {dimensions}")
        self.dimensions = dimensions
        self.seed = seed
        self.batch_size = batch_size
        self.name = f"hashing-{dimensions}-{seed}"

    def _features(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower()) or [text]
        grams = [f"#{w[i : i + 3]}" for w in words for i in range(max(1, len(w) - 2))]
        return words + grams

    def _embed_batch(self, texts: Sequence[str], purpose: Purpose) -> Vectors:
        out = np.zeros((len(texts), self.dimensions), np.float32)
        salt = self.seed.to_bytes(8, "little", signed=True)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                digest = hashlib.blake2b(feature.encode(), digest_size=8, salt=salt).digest()
                value = int.from_bytes(digest, "little")
                sign = 1.0 if value & 1 else -1.0
                out[row, (value >> 1) % self.dimensions] += sign
        # a text whose features all cancel would be a zero vector: give it a fixed unit one
        zero = ~out.any(axis=1)
        out[zero, 0] = 1.0
        return l2_normalize(out)
