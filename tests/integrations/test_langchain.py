"""ragmem's LangChain vector store passes LangChain's own standard integration suite."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core")
lc_tests = pytest.importorskip("langchain_tests.integration_tests")

from ragmem import LocalVectorStore  # noqa: E402
from ragmem.integrations.langchain import RagmemVectorStore  # noqa: E402


class TestRagmemVectorStoreStandard(lc_tests.VectorStoreIntegrationTests):  # type: ignore[misc,name-defined]
    """The unmodified suite (sync and async) on a fresh in-memory store per test."""

    @pytest.fixture
    def vectorstore(self) -> RagmemVectorStore:
        embedding = self.get_embeddings()
        dimensions = len(embedding.embed_query("probe"))
        return RagmemVectorStore(embedding=embedding, store=LocalVectorStore(dimensions))
