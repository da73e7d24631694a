import gzip
import json

import pytest

from ragmem import HashingEmbedder
from ragmem.agents import Memory
from ragmem.eval.longmemeval import _ndcg, evaluate, load_questions, parse_date


def _session(topic, evidence=False):
    return [
        {
            "role": "user",
            "content": f"tell me about {topic}",
            **({"has_answer": True} if evidence else {}),
        },
        {"role": "assistant", "content": f"{topic} is a broad subject with many sides"},
    ]


def _question(qid, qtype, text, answer_topics, topics):
    sessions = [_session(t, evidence=t in answer_topics) for t in topics]
    return {
        "question_id": qid,
        "question_type": qtype,
        "question": text,
        "question_date": "2023/06/01 (Thu) 10:00",
        "answer": "x",
        "answer_session_ids": [f"s_{t}" for t in answer_topics],
        "haystack_dates": [f"2023/05/{10 + n:02d} (Wed) 09:00" for n in range(len(topics))],
        "haystack_session_ids": [f"s_{t}" for t in topics],
        "haystack_sessions": sessions,
    }


@pytest.fixture
def data_file(tmp_path):
    topics = ["gardening", "astronomy", "cooking", "sailing", "chess"]
    data = [
        _question("q1", "single-session-user", "tell me about astronomy", ["astronomy"], topics),
        _question(
            "q2",
            "multi-session",
            "tell me about cooking and sailing",
            ["cooking", "sailing"],
            topics,
        ),
        _question("q3_abs", "multi-session", "what about knitting", [], topics),
    ]
    path = tmp_path / "lme.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump(data, handle)
    return path


def test_loading_leaves_abstention_questions_out(data_file):
    questions = load_questions(data_file)
    assert [q.id for q in questions] == ["q1", "q2"]
    assert questions[0].evidence_turns == {"s_astronomy:0"}
    assert questions[0].sessions[0][1] == parse_date("2023/05/10 (Wed) 09:00")


def test_metrics_per_type_and_overall(data_file, tmp_path):
    questions = load_questions(data_file)
    options = {"deduplicate": False, "same_subject": None}  # as run() opens it
    with Memory(tmp_path / "m", embedder=HashingEmbedder(64), **options) as memory:
        result = evaluate(memory, questions, ks=[1, 5])
        again = evaluate(memory, questions, ks=[1, 5])  # reuses what the first run ingested
    assert result["turns_ingested"] == 20
    assert again["turns_ingested"] == 0
    assert result["per_type"]["single-session-user"]["recall_any@1"] == 1.0
    assert result["per_type"]["multi-session"]["recall_all@1"] == 0.0
    assert result["per_type"]["multi-session"]["recall_all@5"] == 1.0
    assert result["recall_any@5"] == 1.0
    assert 0 < result["turn_recall@5"] <= 1.0
    assert [q["question_id"] for q in result["questions"]] == ["q1", "q2"]
    assert result["questions"][0]["ranked_session_ids"][0] == "s_astronomy"
    assert len(set(result["questions"][0]["ranked_session_ids"])) == 5
    assert {k: v for k, v in again.items() if "@" in k} == {
        k: v for k, v in result.items() if "@" in k
    }


def test_ndcg_is_one_for_a_perfect_ranking():
    assert _ndcg(["a", "b", "c"], {"a", "b"}, 5) == pytest.approx(1.0)
    assert _ndcg(["c", "a"], {"a"}, 5) == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert _ndcg(["c"], {"a"}, 1) == 0.0


def test_turns_carry_their_session_date_as_words(data_file, tmp_path):
    questions = load_questions(data_file)[:1]
    options = {"deduplicate": False, "same_subject": None}
    with Memory(tmp_path / "m", embedder=HashingEmbedder(64), **options) as memory:
        evaluate(memory, questions, ks=[5])
        texts = {m.metadata["turn"]: m.text for m in memory.list(user_id="q1")}
    # the haystack says "(Wed)" for every date: the weekday comes from the date itself
    assert texts["s_gardening:0"] == "Wednesday 10 May 2023, user: tell me about gardening"
    assert texts["s_astronomy:1"].startswith("Thursday 11 May 2023, assistant: astronomy")


def test_evidence_dated_after_the_question_is_still_recalled(tmp_path):
    # LongMemEval-S dates some haystack sessions, evidence among them, after the question
    topics = ["gardening", "astronomy", "cooking"]
    raw = _question("q1", "temporal-reasoning", "tell me about cooking", ["cooking"], topics)
    raw["question_date"] = "2023/05/11 (Thu) 12:00"  # the cooking session is on 12 May
    path = tmp_path / "late.json"
    path.write_text(json.dumps([raw]), encoding="utf-8")
    options = {"deduplicate": False, "same_subject": None}
    with Memory(tmp_path / "m", embedder=HashingEmbedder(64), **options) as memory:
        result = evaluate(memory, load_questions(path), ks=[1])
    assert result["recall_any@1"] == 1.0
    assert result["questions"][0]["ranked_session_ids"][0] == "s_cooking"
