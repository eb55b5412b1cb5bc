#!/usr/bin/env bash
# The `cost` policy (draft while the next token pays on the measured costs) against the confidence policy the
# hybrid was tuned with (threshold 0.6, k 8), both inside the hybrid, on issue 23's pieces 1 and 2 (36 prompts),
# 128 new tokens, greedy, the bundled 1.5B (int4 torch runner) and 0.5B draft; one bench run per piece, rows
# interleaved prompt by prompt. Resumable: a finished piece is skipped.
#   [VENV=/path/.venv] bash docs/results/runners/2026-12-06-zen4/policy.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
HERE=docs/results/runners/2026-12-06-zen4; PROMPTS=docs/results/runners/2026-12-05-fused/prompts
for n in 1 2; do
  out=$HERE/policy-$n.json
  if python -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get('complete') else 1)" "$out" 2>/dev/null
  then echo "done: $out"; continue; fi
  specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct \
    --prompts $PROMPTS/piece-$n.jsonl -n 128 --setup "hyb6=hybrid:confidence:8,policy.threshold=0.6" \
    --setup "hybc=hybrid:cost:8" --setup "hybc12=hybrid:cost:12" --json "$out"
done
