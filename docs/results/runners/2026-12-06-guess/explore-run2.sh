#!/usr/bin/env bash
# Exploratory run 2 of the draft guesses (2026-12-06), as it ran on a3b112c plus the guess_from option (committed in
# 3840a70), where guess defaulted to 0: to rerun it later, add guess=0 to hyb6. First 18 prompts only.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct \
  --prompts docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl -n 128 \
  --setup "hyb6=hybrid:confidence:8,policy.threshold=0.6" \
  --setup "hyb6g4=hybrid:confidence:8,policy.threshold=0.6,guess=4" \
  --setup "hyb6g4s=hybrid:confidence:8,policy.threshold=0.6,guess=4,guess_from=store" \
  --setup "hyb6g7s=hybrid:confidence:8,policy.threshold=0.6,guess=7,guess_from=store" \
  --json docs/results/runners/2026-12-06-guess/explore-run2.json
