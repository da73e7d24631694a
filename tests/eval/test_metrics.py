import math

import pytest

from ragmem import InvalidInputError
from ragmem.eval.metrics import average_precision, evaluate, mrr, ndcg, recall

QRELS = {"d1": 2, "d2": 1, "d3": 0, "d4": 1}


def test_ndcg_hand_computed():
    ranked = ["d3", "d1", "x", "d2"]
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg(ranked, QRELS, k=10) == pytest.approx(dcg / idcg)
    # at k=2 the ideal list is cut too: [2, 1]
    assert ndcg(ranked, QRELS, k=2) == pytest.approx((2 / math.log2(3)) / (2 + 1 / math.log2(3)))
    assert ndcg(["d1", "d2", "d4"], QRELS, k=3) == pytest.approx(1.0)
    assert ndcg([], QRELS) == 0.0
    assert ndcg(["a"], {"a": 0}) == 0.0


def test_recall_mrr_map_hand_computed():
    ranked = ["d3", "d1", "x", "d2"]
    assert recall(ranked, QRELS, k=2) == pytest.approx(1 / 3)
    assert recall(ranked, QRELS, k=100) == pytest.approx(2 / 3)
    assert mrr(ranked, QRELS, k=10) == pytest.approx(1 / 2)
    assert mrr(ranked, QRELS, k=1) == 0.0
    # relevant at ranks 2 and 4: (1/2 + 2/4) / 3 relevant
    assert average_precision(ranked, QRELS) == pytest.approx((0.5 + 0.5) / 3)
    assert average_precision(ranked, QRELS, k=3) == pytest.approx(0.5 / 3)


def test_evaluate_averages_over_judged_queries():
    run = {"q1": ["a", "b"], "q2": ["c"], "extra": ["z"]}
    qrels = {"q1": {"b": 1}, "q2": {"c": 1}, "q3": {"d": 1}, "empty": {"e": 0}}
    result = evaluate(run, qrels, ks=[1, 10])
    # q3 retrieved nothing and counts as 0; "empty" has no relevant doc and is skipped
    assert result["mrr@10"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert result["recall@1"] == pytest.approx(1 / 3)
    assert set(result) == {f"{m}@{k}" for m in ("ndcg", "recall", "mrr", "map") for k in (1, 10)}
    with pytest.raises(InvalidInputError):
        evaluate(run, {"q": {"a": 0}})
    with pytest.raises(InvalidInputError):
        ndcg(["a"], {"a": 1}, k=0)
