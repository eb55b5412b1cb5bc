#!/usr/bin/env bash
# The hybrid's long=aded against its default (no draft for a long prompt's rounds without a long match) and ADED
# alone, on 16 long prompts (long.jsonl: Spec-Bench rag and summarization, questions 3-10 of each), 128 new
# tokens, greedy, the bundled 1.5B (int4 torch runner) and 0.5B draft; one bench run.
#   [VENV=/path/.venv] bash docs/results/runners/2026-12-06-zen4/long.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
HERE=docs/results/runners/2026-12-06-zen4
specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct --prompts $HERE/long.jsonl \
  -n 128 --setup "hyb6=hybrid:confidence:8,policy.threshold=0.6" \
  --setup "hyb6a=hybrid:confidence:8,policy.threshold=0.6,long=aded" --setup "aded=aded" --json $HERE/long.json
