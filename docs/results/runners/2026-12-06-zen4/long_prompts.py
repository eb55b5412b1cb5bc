"""The long-prompt set for the hybrid's `long` option: Spec-Bench's rag and summarization questions 3-10 of each
category (the first two of each are in issue 23's 54 prompts), first turn, as a bench prompt file.
`python docs/results/runners/2026-12-06-zen4/long_prompts.py [DATA_DIR]` writes long.jsonl beside this file."""
import json
import sys
from pathlib import Path

from specdec.datadir import resolve_data_dir

data = resolve_data_dir(sys.argv[1] if len(sys.argv) > 1 else None)
rows = [json.loads(line) for line in (Path(data) / "spec_bench" / "question.jsonl").read_text().splitlines() if line]
out = []
for cat in ("rag", "summarization"):
    for r in [r for r in rows if r["category"] == cat][2:10]:
        out.append({"prompt": r["turns"][0], "category": cat, "id": f"spec_bench:{r['question_id']}"})
path = Path(__file__).with_name("long.jsonl")
path.write_text("".join(json.dumps(o) + "\n" for o in out))
print(f"wrote {len(out)} prompts to {path}")
