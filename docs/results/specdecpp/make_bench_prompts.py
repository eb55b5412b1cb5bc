"""Writes bench_prompts.jsonl: the held-out prompts of the SpecDec++ speed sweep, read from the shared data.
GSM8K test questions 100-104 (never used for training; the head's AUC sets are test 0-15) and the third
first-turn of five Spec-Bench categories (the head never saw Spec-Bench). bench_prompts_t1.jsonl (the
temperature-1 run, shorter for time): its first 3 GSM8K and first 3 Spec-Bench rows."""
import json
import sys
from pathlib import Path

data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
out = Path(__file__).with_name("bench_prompts.jsonl")
rows = []
gsm = [json.loads(l) for l in (data / "gsm8k" / "test.jsonl").read_text().splitlines() if l.strip()]
rows += [{"prompt": gsm[i]["question"], "category": "gsm8k", "id": f"gsm8k-test-{i}"} for i in range(100, 105)]
sb = [json.loads(l) for l in (data / "spec_bench" / "question.jsonl").read_text().splitlines() if l.strip()]
for cat in ("writing", "coding", "math_reasoning", "translation", "qa"):
    r = [x for x in sb if x["category"] == cat][2]
    rows.append({"prompt": r["turns"][0], "category": cat, "id": f"spec_bench-{r['question_id']}"})
out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
t1 = rows[:3] + rows[5:8]
out.with_name("bench_prompts_t1.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in t1))
print(f"wrote {len(rows)} prompts to {out} and {len(t1)} to bench_prompts_t1.jsonl")
