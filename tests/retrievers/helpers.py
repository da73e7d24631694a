"""Small deterministic helpers for retriever tests."""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter

import numpy as np

from ragmem.embedders.base import TokenEmbedder, l2_normalize
from ragmem.retrievers.analysis import TextAnalyzer

WORD = re.compile(r"\w+")


class HashingTokenEmbedder(TokenEmbedder):
    """One hashed vector per word, mixed with its neighbours: a stand-in for a contextual model."""

    def __init__(self, dimensions: int = 32) -> None:
        self.dimensions = dimensions
        self.name = f"hash-tokens-{dimensions}"
        self.calls = 0

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        return np.random.default_rng(seed).standard_normal(self.dimensions).astype(np.float32)

    def _embed_tokens_batch(self, texts, purpose):
        self.calls += len(texts)
        out = []
        for text in texts:
            words = WORD.findall(text.lower()) or ["<empty>"]
            base = np.stack([self._word(w) for w in words])
            mixed = base.copy()
            mixed[1:] += 0.3 * base[:-1]
            mixed[:-1] += 0.3 * base[1:]
            out.append(l2_normalize(mixed))
        return out


def reference_bm25(query: str, texts: dict[str, str], k1=1.2, b=0.75, analyzer=None):
    """Lucene BM25 scores computed the slow, obvious way (positive scores only)."""
    analyzer = analyzer or TextAnalyzer()
    docs = {i: Counter(analyzer(t)) for i, t in texts.items()}
    n = len(docs)
    avgdl = sum(sum(c.values()) for c in docs.values()) / n if n else 1.0
    scores = {}
    for i, counts in docs.items():
        dl = sum(counts.values())
        total = 0.0
        for term in analyzer(query):
            tf = counts.get(term, 0)
            if not tf:
                continue
            df = sum(1 for c in docs.values() if term in c)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            total += idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))
        if total > 0:
            scores[i] = total
    return scores
