"""Encoding a long text with tiktoken's encodings one distinct word at a time.

The encodings' pre-tokenizers never join a non-whitespace character to a following
space, and BPE never merges across pre-tokens, so ``encode(a + b) == encode(a) +
encode(b)`` whenever ``a`` ends with a non-whitespace character and ``b`` starts with
a space (``TiktokenTokenizer.space_split``). Cut at every such space, a text is a
sequence of *words* (the first one, then each starting with its space) whose tokens,
concatenated, are the text's. The distinct words joined, the first word first, make
a text that splits at the same places; encoding it once and copying each word's
tokens to every place the word occurs gives the text's ids, exactly.

That pays where BPE works hard: words of several tokens each that repeat, as in
most languages other than English and in made-up words, where the merges dominate
the cost of encoding. English prose and source code are mostly whole tokens, found
at once by the encoder, and are encoded directly (``worthwhile`` decides).
"""

from __future__ import annotations

import array
import functools
import itertools
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy.typing as npt

__all__ = ["word_ids", "worthwhile"]

# worthwhile() counts the tokens of this many characters from the start of the text
# (about 5% of encoding a text of TiktokenTokenizer's default parallel_min directly)
_SAMPLE = 1 << 14
# words of English and code average over 3.5 characters a token; made-up words and
# most other languages written with spaces take fewer
_CHARS_PER_TOKEN = 3.0
# with a space less often than this, words are too long to repeat (CJK, minified code)
_CHARS_PER_SPACE = 32
# the distinct words must be a small part of the text for one pass over them to pay
_DISTINCT_SHARE = 0.6
# characters that stand in for the word-separating spaces while splitting; one the
# text does not contain is used
_SENTINELS = "\x00\x01\x02\x03\x04\x05\x06\x07\x08"


def worthwhile(text: str, count: Callable[[str], int]) -> bool:
    """Whether ``word_ids`` is expected to beat encoding ``text`` directly."""
    sample = text[:_SAMPLE]
    if sample.count(" ") * _CHARS_PER_SPACE < len(sample):
        return False
    return len(sample) < _CHARS_PER_TOKEN * count(sample)


def word_ids(
    text: str,
    encode: Callable[[str], npt.NDArray[np.uint32]],
    token_bytes: npt.NDArray[np.int64],
    *,
    distinct_share: float = _DISTINCT_SHARE,
) -> npt.NDArray[np.uint32] | None:
    """The ids of ``text``, encoding each distinct word once with ``encode``.

    ``token_bytes[i]`` is the UTF-8 length of ordinary token ``i``. None when the text
    does not split into repeating words (then encode it directly): no word-separating
    space, lone surrogates, every sentinel character present, or the distinct words
    joined longer than ``distinct_share`` of the text.
    """
    try:
        words = _words(text)
    except UnicodeEncodeError:  # lone surrogates
        return None
    if words is None or len(words) < 2:
        return None
    first, rest = words[0], words[1:]
    # each word's position of first occurrence: setdefault keeps the first count() value
    seen: dict[str, int] = {}
    first_seen = np.frombuffer(
        array.array("q", map(seen.setdefault, rest, itertools.count())), dtype=np.int64
    )
    distinct = list(seen)
    joined = first + " " + " ".join(distinct)
    if len(joined) > distinct_share * len(text):
        return None
    ids = encode(joined)
    # the token range of each distinct word inside the ids of `joined`
    token_ends = np.cumsum(token_bytes[ids])
    first_bytes, word_bytes = _utf8_lengths(joined, first, distinct)
    word_ends = np.searchsorted(token_ends, first_bytes + np.cumsum(word_bytes + 1), "right")
    word_starts = np.empty_like(word_ends)
    word_starts[0] = n_first = np.searchsorted(token_ends, first_bytes, "right")
    word_starts[1:] = word_ends[:-1]
    # every occurrence of a word gets the distinct word's range, in text order
    is_new = first_seen == np.arange(len(first_seen))
    ordinal = (np.cumsum(is_new) - 1)[first_seen]
    lengths = (word_ends - word_starts)[ordinal]
    out_ends = np.cumsum(lengths)
    index = np.repeat(word_starts[ordinal] - (out_ends - lengths), lengths)
    index += np.arange(len(index))
    return np.concatenate((ids[:n_first], ids[index]))


def _words(text: str) -> list[str] | None:
    """``text`` cut at every space that follows a non-whitespace character, those
    spaces dropped (each word but the first stood after one); None if no sentinel
    character is free."""
    sentinel = next((s for s in _SENTINELS if s not in text), None)
    if sentinel is None:
        return None
    wide = not text.isascii()
    codec = "utf-32-le" if wide else "ascii"
    buffer = bytearray(text.encode(codec))
    points = np.frombuffer(buffer, dtype=np.uint32 if wide else np.uint8)
    spaces = np.flatnonzero(points == 0x20)
    spaces = spaces[spaces > 0]
    before = points[spaces - 1]
    if wide:
        low = before <= _LAST_SPACE
        after_space = np.zeros(len(before), dtype=bool)
        after_space[low] = _whitespace()[before[low]]
    else:
        after_space = _whitespace()[before]
    points[spaces[~after_space]] = ord(sentinel)
    return buffer.decode(codec).split(sentinel)


def _utf8_lengths(
    joined: str, first: str, distinct: list[str]
) -> tuple[int, npt.NDArray[np.int64]]:
    """UTF-8 lengths of the first word and of each distinct word (without its space)."""
    if joined.isascii():
        return len(first), np.fromiter(map(len, distinct), np.int64, len(distinct))
    utf8 = [len(word.encode("utf-8")) for word in distinct]
    return len(first.encode("utf-8")), np.array(utf8, dtype=np.int64)


_LAST_SPACE = 0x3000  # no code point above U+3000 is whitespace (a test checks)


@functools.cache
def _whitespace() -> npt.NDArray[np.bool_]:
    """``str.isspace`` for every code point up to ``_LAST_SPACE``: a superset of the
    Unicode White_Space that the encodings' patterns match as ``\\s``."""
    return np.array([chr(c).isspace() for c in range(_LAST_SPACE + 1)], dtype=bool)
