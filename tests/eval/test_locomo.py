import json

import pytest

from ragmem import HashingEmbedder
from ragmem.eval.locomo import (
    Conversation,
    Question,
    Turn,
    evaluate,
    load_conversations,
    memory_recall,
    normalise_evidence,
)


def sample_file(tmp_path):
    sample = {
        "sample_id": "conv-x",
        "conversation": {
            "speaker_a": "Ann",
            "speaker_b": "Ben",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Ann", "dia_id": "D1:1", "text": "I adopted a puppy named Rex."},
                {"speaker": "Ben", "dia_id": "D1:2", "text": "Lovely! What breed?"},
                {"speaker": "Ann", "dia_id": "D1:3", "text": "A beagle.", "blip_caption": "a dog"},
            ],
            "session_2_date_time": "10:00 am on 9 June, 2023",
            "session_2": [
                {"speaker": "Ben", "dia_id": "D2:1", "text": "I started learning the violin."},
                {"speaker": "Ann", "dia_id": "D2:2", "text": "How is the violin going?"},
            ],
        },
        "qa": [
            {"question": "What is the puppy called?", "category": 4, "evidence": ["D1:1"]},
            {"question": "Which instrument?", "category": 1, "evidence": ["D2:1; D:2:2"]},
            {"question": "Nothing?", "category": 3, "evidence": []},
        ],
    }
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps([sample]))
    return path


def test_loader_and_evidence_normalisation(tmp_path):
    (conversation,) = load_conversations(sample_file(tmp_path))
    assert [t.id for t in conversation.turns] == ["D1:1", "D1:2", "D1:3", "D2:1", "D2:2"]
    assert conversation.turns[2].memory_text() == "Ann: A beagle. [shares a dog]"
    assert conversation.turns[0].timestamp < conversation.turns[1].timestamp
    assert conversation.questions[1].evidence == ("D2:1", "D2:2")
    assert normalise_evidence(["D", "D9:9", "D1:1 D1:1"], {"D1:1"}) == ("D1:1",)


def test_metrics_on_a_fixed_ranking():
    turns = tuple(
        Turn(id=f"D1:{i}", session=1, date_time="", timestamp=i, speaker="a", text="t")
        for i in range(1, 7)
    )
    questions = (
        Question(conversation="c", question="q1", category=1, evidence=("D1:1", "D1:6")),
        Question(conversation="c", question="q2", category=2, evidence=("D1:2",)),
        Question(conversation="c", question="q3", category=2, evidence=()),
    )
    ranking = ["D1:1", "D1:2", "D1:3", "D1:4", "D1:5", "D1:6"]
    result = evaluate(
        [Conversation(id="c", turns=turns, questions=questions)],
        lambda conversation: lambda question, k: ranking[:k],
        ks=(1, 5, 6),
    )
    assert result["per_category"]["1 multi-hop"]["recall@5"] == 50.0
    assert result["per_category"]["1 multi-hop"]["recall@6"] == 100.0
    assert result["per_category"]["2 temporal"]["recall@1"] == 0.0
    assert result["per_category"]["2 temporal"]["hit@5"] == 100.0
    assert result["recall@5"] == pytest.approx((50.0 + 100.0) / 2)
    assert result["skipped_no_evidence"] == {"2": 1}


def test_memory_backed_run(tmp_path):
    conversations = load_conversations(sample_file(tmp_path))
    result = evaluate(conversations, memory_recall(HashingEmbedder(128)), ks=(1, 5))
    assert result["categories 1-5"]["n"] == 2
    assert result["per_category"]["4 single-hop"]["recall@5"] == 100.0
    assert 0 <= result["recall@1"] <= 100
