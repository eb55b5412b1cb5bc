#!/usr/bin/env bash
# Exploratory run 4 (2026-12-06, second session): the sync guesses on the next 18 of issue 23's prompts (piece 2 of
# the 54), so that with explore.sh (piece 1) they are measured on 36; rows plain, hyb6 without guesses on the round's
# first draft pass (guess_sync=false) and hyb6 with them (the default). 128 new tokens, greedy, the bundled pair.
#   [VENV=/path/.venv] bash docs/results/runners/2026-12-06-sync/explore4.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct \
  --prompts docs/results/runners/2026-12-05-fused/prompts/piece-2.jsonl -n 128 \
  --setup "hyb6ns=hybrid:confidence:8,policy.threshold=0.6,guess_sync=false" \
  --setup "hyb6=hybrid:confidence:8,policy.threshold=0.6" \
  --json docs/results/runners/2026-12-06-sync/explore4.json
