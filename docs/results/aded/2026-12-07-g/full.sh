#!/usr/bin/env bash
# Issue 13's full-size run on a Zen 4 day (2026-12-07) with ADED recycling the target's guesses (the new default) and
# without (recycle=0) in the same run, prompt lookup, llama-server's rows interleaved prompt by prompt with this engine's:
# Spec-Bench 5 per category + the first 20 GSM8K test questions (run d's prompt pieces), 128 new tokens, greedy.
# Resumable: a finished piece is skipped; merge.py (run d's) makes the tables over the finished pieces.
#   SPECDEC_LLAMA_SERVER=/path/llama-server [VENV=/path/.venv] bash docs/results/aded/2026-12-07-g/full.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
HERE=docs/results/aded/2026-12-07-g; PROMPTS=docs/results/aded/2026-12-05-d/prompts
python docs/results/aded/2026-12-05-d/pieces.py "$PROMPTS" 4
for p in "$PROMPTS"/piece-*.jsonl; do
  name=$(basename "$p" .jsonl)
  if python -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get('complete') else 1)" \
      "$HERE/$name.json" 2>/dev/null; then echo "done: $name"; continue; fi
  specdec bench --target qwen2.5-coder-1.5b-instruct --prompts "$p" -n 128 -k 4 \
    --setup aded=aded --setup aded-r0=aded,recycle=0 --setup prompt-lookup=prompt-lookup --llamacpp plain --llamacpp ngram \
    --json "$HERE/$name.json"
done
python docs/results/aded/2026-12-05-d/merge.py "$HERE" | tee "$HERE/full.md"
