#!/usr/bin/env bash
# Run h: issue 13's 85 prompts (run f's script: Spec-Bench 5 per category + GSM8K 20, 4 resumable pieces, 128 tokens,
# greedy) with ADED's sized trees on the conditional, streak-aware calibration (this session's two commits) and
# prompt lookup; no llama-server rows (run g, the same morning on the same machine type, has them).
#   [VENV=/path/.venv] bash docs/results/aded/2026-12-07-h/full.sh
set -euo pipefail
HERE=docs/results/aded/2026-12-07-h/full LLAMA="" \
SETUPS="--setup aded=aded --setup prompt-lookup=prompt-lookup" \
  exec bash "$(dirname "$0")/../2026-12-05-f/full.sh"
