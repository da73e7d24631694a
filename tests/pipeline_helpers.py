"""Test doubles shared by the pipeline, ingest and CLI tests."""

from __future__ import annotations

import numpy as np

from ragmem import HashingEmbedder, LocalVectorStore
from ragmem.llms import LLM, Message


class CountingEmbedder(HashingEmbedder):
    """A HashingEmbedder that records every text it embeds."""

    def __init__(self, dimensions: int = 64) -> None:
        super().__init__(dimensions=dimensions)
        self.embedded: list[str] = []

    def _embed_batch(self, texts, purpose):
        if purpose == "document":
            self.embedded.extend(texts)
        return super()._embed_batch(texts, purpose)


class CitingLLM(LLM):
    """Answers by citing the first two sources it was given; records the messages."""

    name = "citing"

    def __init__(self) -> None:
        self.seen: list[list[Message]] = []

    def _complete(self, messages: list[Message]) -> str:
        self.seen.append(messages)
        return "It runs offline [1]. See also [2] and [99]."

    def _stream(self, messages):
        text = self._complete(messages)
        for i in range(0, len(text), 7):
            yield text[i : i + 7]


def all_ids(store: LocalVectorStore) -> set[str]:
    n = store.count()
    if n == 0:
        return set()
    return {h.id for h in store.search(np.ones(store.dimensions, np.float32), k=n)[0]}
