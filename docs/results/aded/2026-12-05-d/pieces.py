"""Issue 13's full-size prompt set (Spec-Bench 5 per category + the first 20 GSM8K test questions, read from the
data folder) split into N pieces for `full.sh`: prompt i goes to piece i % N, so every piece holds a slice of every
category and a run stopped after some pieces still covers all of them.
    python pieces.py OUT_FOLDER N [SPEC]  (writes OUT_FOLDER/piece-1.jsonl ..; kept when already there)
SPEC: a `--prompts` spec whose spec_bench part is taken per category (default spec_bench:5+gsm8k:20)."""
import json
import sys
from pathlib import Path

from specdec.bench.prompts import load_prompts

out, n = Path(sys.argv[1]), int(sys.argv[2])
spec = sys.argv[3] if len(sys.argv) > 3 else "spec_bench:5+gsm8k:20"
prompts = load_prompts(spec, per_category=True)
out.mkdir(parents=True, exist_ok=True)
for j in range(n):
    path = out / f"piece-{j + 1}.jsonl"
    if path.exists():
        continue
    rows = [{"prompt": p.text, "category": p.category or p.source, "id": f"{p.source}:{p.id}"}
            for i, p in enumerate(prompts) if i % n == j]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(path)
print(f"{len(prompts)} prompts in {n} pieces under {out}")
