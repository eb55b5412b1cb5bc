"""Builds other_train_prompts.jsonl: 64 non-GSM8K training prompts for the acceptance head, made from
SST-2 *train* sentences and MMLU *val* questions (never Spec-Bench, never GSM8K test). Run from the repo root:

    python docs/results/specdecpp/make_other_prompts.py ../shared/data docs/results/specdecpp/other_train_prompts.jsonl
"""
import csv
import json
import random
import sys
from pathlib import Path

data, out = Path(sys.argv[1]), Path(sys.argv[2])
rng = random.Random(0)
sst = [line.split("\t")[0] for line in (data / "sst2" / "train.tsv").read_text().splitlines() if line.strip()]
rng.shuffle(sst)
mmlu = []
for f in sorted((data / "mmlu" / "val").glob("*.csv")):
    with f.open() as fh:
        mmlu += [(f.stem.replace("_val", "").replace("_", " "), row) for row in csv.reader(fh)]
rng.shuffle(mmlu)
rows = []
for i in range(16):
    rows.append({"source": "sst2-train", "prompt": f"Translate the following sentence into German:\n\n{sst[i]}"})
for i in range(16):
    s = " ".join(sst[16 + 3 * i : 19 + 3 * i])
    rows.append({"source": "sst2-train", "prompt": f"Rewrite these movie review notes as a short, well-formed review:\n\n{s}"})
for i in range(16):
    subject, (q, a, b, c, d, ans) = mmlu[i]
    rows.append({"source": "mmlu-val", "prompt": f"A question on {subject}:\n{q}\nA) {a}\nB) {b}\nC) {c}\nD) {d}\n"
                 "Explain your reasoning, then give the letter of the answer."})
for i in range(16):
    subject, (q, *_rest) = mmlu[16 + i]
    rows.append({"source": "mmlu-val", "prompt": f"Answer in a short paragraph: {q}"})
rows = [rows[16 * kind + i] for i in range(16) for kind in range(4)]  # round robin: every prefix is a mix
out.write_text("".join(json.dumps(r) + "\n" for r in rows))
print(f"wrote {len(rows)} prompts to {out}")
