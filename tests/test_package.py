"""The package surface: what `import ragmem` pulls in and what it exports."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import ragmem
from ragmem.errors import ConfigurationError, UnknownBackendError

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL_SDKS = [
    "openai",
    "cohere",
    "qdrant_client",
    "chromadb",
    "onnxruntime",
    "tokenizers",
    "tiktoken",
    "hnswlib",
    "faiss",
    "torch",
    "langchain_core",
    "llama_index",
]


def test_import_ragmem_imports_no_optional_sdk():
    code = (
        "import json, sys; import ragmem; "
        f"print(json.dumps(sorted(m for m in {OPTIONAL_SDKS!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []


def test_import_ragmem_leaves_the_pipeline_and_retrievers_unloaded():
    code = (
        "import sys, ragmem; "
        "print(sorted(m for m in ('ragmem.pipeline', 'ragmem.context', 'ragmem.retrievers.bm25', "
        "'ragmem.embedders.cache', 'sqlite3') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert ragmem.RAGPipeline.__name__ == "RAGPipeline"  # and they load on first use


def test_all_matches_the_public_names():
    eager = {
        name
        for name, value in vars(ragmem).items()
        if not name.startswith("_") and not isinstance(value, type(ragmem))
    }
    assert eager <= set(ragmem.__all__)
    for name in ragmem.__all__:  # the rest load on first access
        assert getattr(ragmem, name) is not None
    # isort-style order: CONSTANTS, then Classes, then functions and dunders
    kind = lambda n: (0 if n.isupper() and len(n) > 1 else 1 if n[0].isupper() else 2, n)  # noqa: E731
    assert list(ragmem.__all__) == sorted(ragmem.__all__, key=kind)
    for name in ragmem.__all__:
        assert getattr(ragmem, name) is not None


def test_the_version_is_written_in_one_place():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in text
    assert "\nversion =" not in text.split("[tool.")[0]
    assert ragmem.__version__.count(".") == 2


def test_registry_lookups_build_the_kind_they_name():
    from ragmem.embedders.base import Embedder
    from ragmem.registry import backend_names, get_embedder, get_llm, load_backend

    assert isinstance(get_embedder("hashing", dimensions=8), Embedder)
    assert "openai" in backend_names("llms")
    assert load_backend("stores", "local").__name__ == "LocalVectorStore"
    with pytest.raises(UnknownBackendError, match="no-such"):
        get_llm("no-such")


def test_a_plugin_that_is_not_the_kind_it_claims_is_refused(monkeypatch):
    from ragmem import registry

    monkeypatch.setitem(registry._BUILTINS["embedders"], "fake", "ragmem.types:Hit")
    with pytest.raises(ConfigurationError, match="not a subclass of Embedder"):
        registry.get_embedder("fake")
