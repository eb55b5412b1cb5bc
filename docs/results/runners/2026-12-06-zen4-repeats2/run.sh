#!/usr/bin/env bash
# `specdec bench --repeats 3` on the Zen 4 day (2026-12-06, sixth session), after llama-server's rows stopped answering a
# repeat from memory (every call a fresh request, prompt cache off; ngram-simple keeps nothing between requests):
# the first 12 prompts of issue 23's piece 1, 128 new tokens, greedy, the bundled 1.5B (int4 torch runner) and 0.5B
# draft; rows plain, hyb6, hybc (the hybrid with the cost policy), ADED, llama-server plain and n-gram, each prompt 3
# times through every row, the order rotating, each row's median-time run kept. The same rows as the fifth session's
# ../2026-12-06-zen4-repeats (whose llama-server row ran once), plus llama-server's n-gram mode. Resumable.
#   SPECDEC_LLAMA_SERVER=/path/llama-server [VENV=/path/.venv] bash docs/results/runners/2026-12-06-zen4-repeats2/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
HERE=docs/results/runners/2026-12-06-zen4-repeats2; PROMPTS=docs/results/runners/2026-12-05-fused/prompts
out=$HERE/piece-1.json
if python -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get('complete') else 1)" "$out" 2>/dev/null
then echo "done: $out"; exit 0; fi
specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct \
  --prompts $PROMPTS/piece-1.jsonl:12 -n 128 --repeats 3 \
  --setup "hyb6=hybrid:confidence:8,policy.threshold=0.6" --setup "hybc=hybrid:cost:8" --setup "aded=aded" \
  --llamacpp plain --llamacpp ngram --json "$out"
