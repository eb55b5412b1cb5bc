"""Builds heldout_spec_bench_prompts.jsonl: 36 Spec-Bench first turns (2 of each MT-bench category, 4 of each
other category) used ONLY to evaluate the acceptance head (held-out AUC), never to train it.

    python docs/results/specdecpp/make_heldout_prompts.py ../shared/data docs/results/specdecpp/heldout_spec_bench_prompts.jsonl
"""
import collections
import json
import sys
from pathlib import Path

data, out = Path(sys.argv[1]), Path(sys.argv[2])
rows = [json.loads(line) for line in (data / "spec_bench" / "question.jsonl").read_text().splitlines() if line.strip()]
by_cat = collections.defaultdict(list)
for r in rows:
    by_cat[r["category"]].append(r)
picked = []
for cat, items in by_cat.items():
    n = 4 if len(items) >= 80 else 2
    picked += [{"source": "spec_bench", "category": cat, "question_id": r["question_id"], "prompt": r["turns"][0]}
               for r in items[-n:]]  # the last ones of each category: the bench's spec_bench:N takes the first
out.write_text("".join(json.dumps(r) + "\n" for r in picked))
print(f"wrote {len(picked)} prompts to {out}")
