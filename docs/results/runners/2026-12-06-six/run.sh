#!/usr/bin/env bash
# Issue 23's 54 prompts (Spec-Bench 2 per category + the first 20 GSM8K test questions + this project's 8 code
# prompts; piece files from ../2026-12-05-fused/prompts), 128 new tokens, greedy, the bundled 1.5B target (int4
# torch runner, default kernel) and the 0.5B draft, after the 6-bit Q6_K codes and 1-row prefetching (2026-12-06,
# third session): rows plain, hyb6, ADED, llama-server plain and n-gram interleaved prompt by prompt. Resumable: a
# finished piece is skipped; merge.py (run d's) makes the tables over the finished pieces.
#   SPECDEC_LLAMA_SERVER=/path/llama-server [VENV=/path/.venv] bash docs/results/runners/2026-12-06-six/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
HERE=docs/results/runners/2026-12-06-six; PROMPTS=docs/results/runners/2026-12-05-fused/prompts
for p in "$PROMPTS"/piece-*.jsonl; do
  name=$(basename "$p" .jsonl)
  if python -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get('complete') else 1)" \
      "$HERE/$name.json" 2>/dev/null; then echo "done: $name"; continue; fi
  specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct --prompts "$p" -n 128 \
    --setup "hyb6=hybrid:confidence:8,policy.threshold=0.6" --setup "aded=aded" \
    --llamacpp plain --llamacpp ngram \
    --json "$HERE/$name.json"
done
python docs/results/aded/2026-12-05-d/merge.py "$HERE" | tee "$HERE/full.md"
