#!/usr/bin/env bash
# The 6-bit Q6_K codes and 1-row prefetching (63bf98e, built and measured on a Sapphire Rapids day) measured on an
# AMD EPYC (Zen 4, 2 cores, AVX-512 VNNI, no AMX) day, then issue 23's 54 prompts there (2026-12-06, fourth session):
# 1. plain decoding of the bundled 1.5B (int4 torch runner) on piece 1 (18 prompts), 128 new tokens, greedy: the tree
#    before (OLD_TREE, a checkout of 3de7354 reading OLD_CACHE, a model cache holding its format-2 pack), this tree,
#    the old one again (drift check);
# 2. the cost curves of this kernel beside llama.cpp's (curves.sh, LLAMA_BENCH: a native build, no AMX to avoid here);
# 3. the 54 prompts (piece files from ../2026-12-05-fused/prompts), rows plain, hyb6, hyb6a (the hybrid with
#    long=aded: ADED drafts the rounds of prompts past 512 tokens), ADED, llama-server plain and n-gram interleaved
#    prompt by prompt. Resumable: a finished step or piece is skipped; merge.py (run d's) makes the tables.
#   OLD_TREE=/path/checkout OLD_CACHE=/path/cache LLAMA_BENCH=/path/llama-bench SPECDEC_LLAMA_SERVER=/path/llama-server \
#     [VENV=/path/.venv] bash docs/results/runners/2026-12-06-zen4/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
HERE=docs/results/runners/2026-12-06-zen4; PROMPTS=docs/results/runners/2026-12-05-fused/prompts
done_() { python -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get('complete') else 1)" "$1" 2>/dev/null; }
old() { done_ "$HERE/$1.json" && return 0
  (cd "$OLD_TREE" && SPECDEC_CACHE="$OLD_CACHE" PYTHONPATH="$OLD_TREE" specdec bench \
  --target qwen2.5-coder-1.5b-instruct --prompts "$OLDPWD/$PROMPTS/piece-1.jsonl" -n 128 --no-hf \
  --json "$OLDPWD/$HERE/$1.json"); }
old plain-old-1
done_ $HERE/plain-new.json || specdec bench --target qwen2.5-coder-1.5b-instruct --prompts $PROMPTS/piece-1.jsonl \
  -n 128 --no-hf --json $HERE/plain-new.json
old plain-old-2
[ -f $HERE/curves/llama_bench.json ] || bash docs/results/bench/profile/curves.sh $HERE/curves
for p in "$PROMPTS"/piece-*.jsonl; do
  name=$(basename "$p" .jsonl)
  if done_ "$HERE/$name.json"; then echo "done: $name"; continue; fi
  specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct --prompts "$p" -n 128 \
    --setup "hyb6=hybrid:confidence:8,policy.threshold=0.6" \
    --setup "hyb6a=hybrid:confidence:8,policy.threshold=0.6,long=aded" --setup "aded=aded" \
    --llamacpp plain --llamacpp ngram \
    --json "$HERE/$name.json"
done
python docs/results/aded/2026-12-05-d/merge.py "$HERE" | tee "$HERE/full.md"
