"""Deterministic embedders and clocks for memory tests."""

from __future__ import annotations

import hashlib
import re

import numpy as np

from ragmem import HashingEmbedder
from ragmem.embedders.base import TokenEmbedder, l2_normalize

WORD = re.compile(r"\w+")


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TokenHashingEmbedder(HashingEmbedder, TokenEmbedder):
    """A hashing embedder that also gives one hashed vector per word (for MaxSim)."""

    def __init__(self, dimensions: int = 32) -> None:
        super().__init__(dimensions)
        self.name = f"hash-tokens-{dimensions}"

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        return np.random.default_rng(seed).standard_normal(self.dimensions).astype(np.float32)

    def _embed_tokens_batch(self, texts, purpose):
        return [
            l2_normalize(np.stack([self._word(w) for w in WORD.findall(t.lower()) or ["_"]]))
            for t in texts
        ]
