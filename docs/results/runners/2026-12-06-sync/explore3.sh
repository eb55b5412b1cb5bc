#!/usr/bin/env bash
# Exploratory run 3 (2026-12-06, second session): ADED under the guard whose plain step is now scaled to the run's
# measured verification. Issue 13's first prompt piece (run d's piece-1: 21 of its 85 prompts), 128 new tokens,
# greedy, -k 4 as in run f; rows plain, aded (its defaults) and aded with the guard off. Run f's piece-1 (the guard
# on the unscaled curve, 2026-12-06 00:51) is the earlier reference, from another run.
#   [VENV=/path/.venv] bash docs/results/runners/2026-12-06-sync/explore3.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
specdec bench --target qwen2.5-coder-1.5b-instruct --prompts docs/results/aded/2026-12-05-d/prompts/piece-1.jsonl \
  -n 128 -k 4 --setup aded=aded --setup "adedng=aded,guard=false" \
  --json docs/results/runners/2026-12-06-sync/explore3.json
