"""Tokenizers: one small protocol for counting and cutting text by tokens.

Chunkers, the context builder and the conversation buffer take any object with this
shape. ``CharTokenizer`` and ``WhitespaceTokenizer`` need nothing installed; OpenAI
encodings (tiktoken, offline) and the local model's tokenizer live beside them.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

# OpenAI encodings live in their own module; tiktoken loads only when one is used.
from ragmem._tokenizers import (
    HuggingFaceTokenizer,
    TiktokenTokenizer,
    encoding_name_for_model,
    get_encoding,
    is_openai_model,
    local_tokenizer,
)

__all__ = [
    "CharTokenizer",
    "HuggingFaceTokenizer",
    "TiktokenTokenizer",
    "Tokenizer",
    "WhitespaceTokenizer",
    "count_tokens",
    "encoding_name_for_model",
    "get_encoding",
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
