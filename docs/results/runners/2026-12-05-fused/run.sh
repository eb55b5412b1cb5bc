#!/usr/bin/env bash
# Issue 23's speed run after the one-call layer loop and the shared-KV attention (2026-12-05, second run of the
# day; the first is ../2026-12-05-amx): the same prompts and rows, hyb12 and dtree replaced by hyb6 with the
# draft's output layer cut to the 65536 lowest token ids (vocab=65536). On a CPU with AMX: Spec-Bench 2 per
# category + the first 20 GSM8K test questions + this project's 8 code prompts (docs/results/bench/prompts/code.jsonl), 128 new tokens, greedy, the bundled 1.5B
# target (int4 torch runner, default kernel: VNNI for short passes, AMX from 12 rows) and the 0.5B draft;
# llama-server's rows (plain, n-gram, draft model) interleaved prompt by prompt with this engine's.
# Resumable: a finished piece is skipped; merge.py (run d's) makes the tables over the finished pieces.
#   SPECDEC_LLAMA_SERVER=/path/llama-server [VENV=/path/.venv] bash docs/results/runners/2026-12-05-fused/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
HERE=docs/results/runners/2026-12-05-fused; PROMPTS=$HERE/prompts
python docs/results/aded/2026-12-05-d/pieces.py "$PROMPTS" 3 "spec_bench:2+gsm8k:20+docs/results/bench/prompts/code.jsonl"
for p in "$PROMPTS"/piece-*.jsonl; do
  name=$(basename "$p" .jsonl)
  if python -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get('complete') else 1)" \
      "$HERE/$name.json" 2>/dev/null; then echo "done: $name"; continue; fi
  specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct --prompts "$p" -n 128 \
    --setup "hyb6=hybrid:confidence:8,policy.threshold=0.6" \
    --setup "hyb6v=hybrid:confidence:8,policy.threshold=0.6,vocab=65536" \
    --setup "aded=aded" \
    --llamacpp plain --llamacpp ngram --llamacpp draft \
    --json "$HERE/$name.json"
done
python docs/results/aded/2026-12-05-d/merge.py "$HERE" | tee "$HERE/full.md"
