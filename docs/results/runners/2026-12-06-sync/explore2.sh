#!/usr/bin/env bash
# Exploratory run 2 (2026-12-06, second session): does the hybrid's confidence policy want other settings now that
# its drafted tokens cost fewer draft passes (guesses)? The first 18 of issue 23's prompts, 128 new tokens, greedy,
# the bundled 1.5B target (int4 torch runner) and 0.5B draft: rows plain, hyb6 (threshold 0.6, k 8: the setup of the
# runs above), thresholds 0.5 and 0.4, and k 12.
#   [VENV=/path/.venv] bash docs/results/runners/2026-12-06-sync/explore2.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct \
  --prompts docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl -n 128 \
  --setup "hyb6=hybrid:confidence:8,policy.threshold=0.6" \
  --setup "hyb5=hybrid:confidence:8,policy.threshold=0.5" \
  --setup "hyb4=hybrid:confidence:8,policy.threshold=0.4" \
  --setup "hyb6k12=hybrid:confidence:12,policy.threshold=0.6" \
  --json docs/results/runners/2026-12-06-sync/explore2.json
