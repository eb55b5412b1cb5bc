#!/usr/bin/env bash
# Exploratory run 1 of the draft guesses (2026-12-06), as it ran at commit a3b112c, where guess defaulted to 0: to
# rerun it at a later commit, add guess=0 to hyb6 (guess=4 is the default since 3840a70). First 18 prompts only.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct \
  --prompts docs/results/runners/2026-12-05-fused/prompts/explore-run1.jsonl -n 128 \
  --setup "hyb6=hybrid:confidence:8,policy.threshold=0.6" \
  --setup "hyb6g2=hybrid:confidence:8,policy.threshold=0.6,guess=2" \
  --setup "hyb6g4=hybrid:confidence:8,policy.threshold=0.6,guess=4" \
  --json docs/results/runners/2026-12-06-guess/explore-run1.json
