#!/usr/bin/env bash
# Exploratory run (2026-12-06, second session): the first 18 of issue 23's prompts, 128 new tokens, greedy, the
# bundled 1.5B target (int4 torch runner) and 0.5B draft; rows plain, hyb6 without guesses on the round's first
# draft pass (guess_sync=false: the drafter before this change), hyb6 with them (the new default) and the same
# with the guard off (what the guard, now scaled to the run's measured verification, still costs or saves).
#   [VENV=/path/.venv] bash docs/results/runners/2026-12-06-sync/explore.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct \
  --prompts docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl -n 128 \
  --setup "hyb6ns=hybrid:confidence:8,policy.threshold=0.6,guess_sync=false" \
  --setup "hyb6=hybrid:confidence:8,policy.threshold=0.6" \
  --setup "hyb6ng=hybrid:confidence:8,policy.threshold=0.6,guard=false" \
  --json docs/results/runners/2026-12-06-sync/explore.json
