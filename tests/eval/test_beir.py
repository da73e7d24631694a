import gzip
import json
import os
from pathlib import Path

import pytest

from ragmem import ConfigurationError, HashingEmbedder, StorageError
from ragmem.cli import main
from ragmem.eval.beir import cached_embeddings, load_beir, run_beir

DOCS = [
    ("d1", "Solar", "Solar panels convert sunlight into electricity."),
    ("d2", "Wind", "Wind turbines generate power from moving air."),
    ("d3", "Cats", "Cats sleep for most of the day."),
    ("d4", "Dogs", "Dogs are loyal pets that enjoy walks."),
]
QUERIES = {"q1": "how do solar panels make electricity", "q2": "which pets sleep a lot", "q9": "x"}


def write_dataset(root: Path, gz: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS)
    if gz:
        with gzip.open(root / "corpus.jsonl.gz", "wt") as f:
            f.write(lines)
    else:
        (root / "corpus.jsonl").write_text(lines)
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items())
    )
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    return root


@pytest.mark.parametrize("gz", [False, True])
def test_load_beir(tmp_path, gz):
    data = load_beir(write_dataset(tmp_path / "tiny", gz=gz))
    assert data.ids == ["d1", "d2", "d3", "d4"]
    assert data.texts[0] == "Solar Solar panels convert sunlight into electricity."
    assert data.queries == {"q1": QUERIES["q1"], "q2": QUERIES["q2"]}  # judged queries only
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d3": 1}}
    with pytest.raises(StorageError, match=r"dev\.tsv"):
        load_beir(tmp_path / "tiny", split="dev")


def test_run_beir_configurations(tmp_path):
    root = write_dataset(tmp_path / "tiny")
    results = run_beir(
        root, ["bm25", "dense", "rrf", "hybrid"], ks=[1, 10], embedder=HashingEmbedder(64)
    )
    assert [r["retriever"] for r in results] == ["bm25", "dense", "rrf", "hybrid"]
    assert results[0]["ndcg@10"] == pytest.approx(1.0)
    for result in results:
        assert {"ndcg@10", "recall@10", "mrr@10", "map@1", "timings", "config"} <= set(result)
        assert result["n_queries"] == 2
    with pytest.raises(ConfigurationError, match="bm26"):
        run_beir(root, ["bm26"])


def test_embeddings_are_cached(tmp_path):
    data = load_beir(write_dataset(tmp_path / "tiny"))

    class Counting(HashingEmbedder):
        calls = 0

        def _embed_batch(self, texts, purpose):
            Counting.calls += 1
            return super()._embed_batch(texts, purpose)

    first, hit1 = cached_embeddings(Counting(32), data, tmp_path / "cache")
    second, hit2 = cached_embeddings(Counting(32), data, tmp_path / "cache")
    assert (hit1, hit2, Counting.calls) == (False, True, 1)
    assert (first == second).all()
    # a corrupt cache file is recomputed, not trusted
    (cache_file,) = (tmp_path / "cache").iterdir()
    cache_file.write_bytes(b"garbage")
    third, hit3 = cached_embeddings(Counting(32), data, tmp_path / "cache")
    assert (hit3, (third == first).all()) == (False, True)


def test_cli_eval_beir_json(tmp_path, capsys):
    root = write_dataset(tmp_path / "tiny")
    argv = ["eval", "beir", str(root), "--retriever", "bm25", "--k", "1,10", "--json", "--no-cache"]
    assert main(argv) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    result = json.loads(line)
    assert result["retriever"] == "bm25"
    assert result["ndcg@10"] == pytest.approx(1.0)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["eval", "beir", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ragmem: error: not a BEIR dataset folder")
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        main(["eval", "beir", str(tmp_path), "--k", "0"])


DATA = Path(
    os.environ.get("RAGMEM_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
)
SCIFACT = DATA / "beir" / "scifact"


@pytest.mark.slow
@pytest.mark.skipif(not SCIFACT.exists(), reason="SciFact not available")
def test_scifact_bm25_quality():
    (result,) = run_beir(SCIFACT, ["bm25"])
    assert result["n_queries"] == 300
    assert result["ndcg@10"] >= 0.68


def test_hybrid_rerank_configuration_caches_token_vectors(tmp_path):
    from ragmem.embedders.base import TokenEmbedder
    from ragmem.eval.configs import RERANK_DEFAULTS
    from ragmem.pipeline.defaults import build_reranker
    from ragmem.retrievers import LateInteractionReranker
    from tests.retrievers.helpers import HashingTokenEmbedder

    class Both(HashingEmbedder, TokenEmbedder):
        def __init__(self):
            HashingEmbedder.__init__(self, 32)
            self.tokens = HashingTokenEmbedder(32)

        def _embed_tokens_batch(self, texts, purpose):
            return self.tokens._embed_tokens_batch(texts, purpose)

    root = write_dataset(tmp_path / "tiny")
    cache = tmp_path / "cache"
    (first,) = run_beir(root, ["hybrid-rerank"], embedder=Both(), cache_dir=cache)
    (second,) = run_beir(root, ["hybrid-rerank"], embedder=Both(), cache_dir=cache)
    assert "tokens_s" in first["timings"]
    assert "tokens_cached_s" in second["timings"]
    assert "embed_cached_s" in second["timings"]
    assert first["ndcg@10"] == second["ndcg@10"]
    assert first["config"]["rerank"]["tokens"] > 0
    for key in ("depth", "weight", "encoding", "normalization"):
        assert first["config"]["rerank"][key] == RERANK_DEFAULTS[key]
    # the pipeline's late-interaction reranker is the one evaluated here
    reranker = build_reranker("late-interaction", embedder=Both())
    assert isinstance(reranker, LateInteractionReranker)
    assert (reranker.weight, reranker.normalization, reranker.store.encoding) == (
        RERANK_DEFAULTS["weight"],
        RERANK_DEFAULTS["normalization"],
        RERANK_DEFAULTS["encoding"],
    )
    with pytest.raises(ConfigurationError, match="token"):
        run_beir(root, ["hybrid-rerank"], embedder=HashingEmbedder(32))
