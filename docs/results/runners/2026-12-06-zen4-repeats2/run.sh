#!/usr/bin/env bash
# `specdec bench --repeats 3` on the Zen 4 day (2026-12-06, sixth session), after llama-server's rows stopped answering a
# repeat from memory (every call a fresh request, prompt cache off; ngram-simple keeps nothing between requests).
# Rows plain, hyb6, hybc (the hybrid with the cost policy), ADED and llama-server plain, each prompt 3 times through
# every row, the order rotating, each row's median-time run kept; 128 new tokens, greedy, the bundled 1.5B (int4 torch
# runner) and 0.5B draft. Resumable (a finished piece is skipped).
#   piece 1 (default): the first 12 prompts of issue 23's piece 1, plus llama-server's n-gram row (the fifth
#     session's ../2026-12-06-zen4-repeats ran the same prompts with llama-server's row answered from memory)
#   piece 2: the 18 prompts of issue 23's piece 2
#   SPECDEC_LLAMA_SERVER=/path/llama-server [VENV=/path/.venv] bash docs/results/runners/2026-12-06-zen4-repeats2/run.sh [1|2]
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
HERE=docs/results/runners/2026-12-06-zen4-repeats2; PROMPTS=docs/results/runners/2026-12-05-fused/prompts
case "${1:-1}" in
  1) src=$PROMPTS/piece-1.jsonl:12; extra=(--llamacpp ngram) ;;
  2) src=$PROMPTS/piece-2.jsonl; extra=() ;;
  *) echo "usage: run.sh [1|2]" >&2; exit 2 ;;
esac
out=$HERE/piece-${1:-1}.json
if python -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get('complete') else 1)" "$out" 2>/dev/null
then echo "done: $out"; exit 0; fi
specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct \
  --prompts "$src" -n 128 --repeats 3 \
  --setup "hyb6=hybrid:confidence:8,policy.threshold=0.6" --setup "hybc=hybrid:cost:8" --setup "aded=aded" \
  --llamacpp plain "${extra[@]}" --json "$out"
