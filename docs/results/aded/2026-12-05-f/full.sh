#!/usr/bin/env bash
# Issue 13's full-size run again with ADED's new defaults (16-node sized trees, suffix matches first, bundled store)
# and llama-server's rows interleaved prompt by prompt with this engine's (the bench does that since this stop):
# Spec-Bench 5 per category + the first 20 GSM8K test questions (run d's prompt pieces), 128 new tokens, greedy.
# Resumable: a finished piece is skipped; merge.py (run d's) makes the tables over the finished pieces.
#   SPECDEC_LLAMA_SERVER=/path/llama-server [VENV=/path/.venv] bash docs/results/aded/2026-12-05-f/full.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
HERE=${HERE:-docs/results/aded/2026-12-05-f}; PROMPTS=docs/results/aded/2026-12-05-d/prompts
SETUPS=${SETUPS:---setup aded=aded --setup prompt-lookup=prompt-lookup}  # a later run's rows (run g)
LLAMA=${LLAMA---llamacpp plain --llamacpp ngram}  # LLAMA="": no llama-server rows (run h)
python docs/results/aded/2026-12-05-d/pieces.py "$PROMPTS" 4
for p in "$PROMPTS"/piece-*.jsonl; do
  name=$(basename "$p" .jsonl)
  if python -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get('complete') else 1)" \
      "$HERE/$name.json" 2>/dev/null; then echo "done: $name"; continue; fi
  specdec bench --target qwen2.5-coder-1.5b-instruct --prompts "$p" -n 128 -k 4 \
    $SETUPS $LLAMA \
    --json "$HERE/$name.json"
done
python docs/results/aded/2026-12-05-d/merge.py "$HERE" | tee "$HERE/full.md"
