"""Are Memory's scores comparable across queries? A default ``min_score`` chosen on LoCoMo.

Positives: each LoCoMo question with evidence, asked of its own conversation's memory;
the score of the first evidence turn among the top 10 is what a threshold must keep.
Negatives: each question of conversation i+1 asked of conversation i's memory (other
people, other lives); a threshold should leave them with nothing. For a grid of
thresholds the script prints the share of answerable questions whose first evidence
hit survives and the share of negatives that return nothing, and the largest
threshold that keeps >= 95% of the answerable ones. It also prints recall@5/@10 as a
check that the ranking is the one ``ragmem eval locomo`` measures.

    python benchmarks/memory_scores.py ../shared/data/locomo/locomo10.json [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from ragmem.embedders.local import LocalEmbedder
from ragmem.eval.locomo import build_memory, load_conversations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    conversations = load_conversations(args.path)
    embedder = LocalEmbedder()
    positives: list[float] = []  # score of the first evidence hit (answerable questions)
    unanswered = 0  # questions with no evidence in the top 10
    negatives: list[float] = []  # best score of a question asked of the wrong memory
    recall = {5: 0.0, 10: 0.0}
    asked = 0
    started = time.perf_counter()
    for n, conversation in enumerate(conversations):
        memory = build_memory(conversation, embedder)
        for question in conversation.questions:
            if not question.evidence:
                continue
            hits = memory.search(question.question, user_id=conversation.id, k=10)
            ranked = [str(h.metadata["dia_id"]) for h in hits]
            gold = set(question.evidence)
            asked += 1
            for k in recall:
                recall[k] += len(gold.intersection(ranked[:k])) / len(gold)
            first = next((h for h in hits if h.metadata["dia_id"] in gold), None)
            if first is None:
                unanswered += 1
            else:
                positives.append(first.score)
        other = conversations[(n + 1) % len(conversations)]
        for question in other.questions:
            if question.evidence:
                top = memory.search(question.question, user_id=conversation.id, k=1)
                negatives.append(top[0].score if top else 0.0)
        memory.close()
        print(f"conversation {conversation.id} done", file=sys.stderr, flush=True)
    rows = []
    for step in range(0, 101):
        t = step / 100
        keep = sum(s >= t for s in positives) / len(positives)
        empty = sum(s < t for s in negatives) / len(negatives)
        rows.append({"threshold": t, "answerable_kept": keep, "negatives_empty": empty})
    chosen = max((r for r in rows if r["answerable_kept"] >= 0.95), key=lambda r: r["threshold"])
    result = {
        "recall@5": round(100 * recall[5] / asked, 2),
        "recall@10": round(100 * recall[10] / asked, 2),
        "answerable": len(positives),
        "no_evidence_in_top10": unanswered,
        "negatives": len(negatives),
        "chosen": chosen,
        "grid": rows[::5],
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"recall@5 {result['recall@5']}  recall@10 {result['recall@10']}")
    print(f"{'threshold':>10} {'answerable kept':>16} {'negatives empty':>16}")
    for row in rows[::5]:
        print(
            f"{row['threshold']:>10.2f} {row['answerable_kept']:>16.3f} "
            f"{row['negatives_empty']:>16.3f}"
        )
    print(f"chosen: {chosen}")


if __name__ == "__main__":
    main()
