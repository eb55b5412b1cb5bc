#!/usr/bin/env bash
# Issue 13's full-size run on a Zen 4 day (2026-12-07): run f's script (its 85 prompts in 4 resumable pieces, 128
# tokens, greedy, llama-server's plain and n-gram rows interleaved prompt by prompt) with ADED recycling the target's
# guesses (the new default) and without (recycle=0) in the same run, and prompt lookup.
#   SPECDEC_LLAMA_SERVER=/path/llama-server [VENV=/path/.venv] bash docs/results/aded/2026-12-07-g/full.sh
set -euo pipefail
HERE=docs/results/aded/2026-12-07-g \
SETUPS="--setup aded=aded --setup aded-r0=aded,recycle=0 --setup prompt-lookup=prompt-lookup" \
  exec bash "$(dirname "$0")/../2026-12-05-f/full.sh"
