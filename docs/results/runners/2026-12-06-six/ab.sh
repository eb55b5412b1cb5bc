#!/usr/bin/env bash
# 6-bit Q6_K codes and prefetching on 1-row passes (2026-12-06, third session), side by side with the kernel before
# them: plain decoding of the bundled 1.5B (int4 torch runner) on piece 1 of issue 23's prompts (18), 128 new
# tokens, greedy, first with the tree before (OLD_TREE, a checkout of 3de7354, reading OLD_CACHE: a copy of the
# model cache holding its format-2 pack), then with this one, then the old one again (drift check); then the cost
# curves of this kernel beside llama.cpp's (curves.sh).
#   OLD_TREE=/path/checkout OLD_CACHE=/path/models LLAMA_BENCH=/path/llama-bench [VENV=/path/.venv] \
#     bash docs/results/runners/2026-12-06-six/ab.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
HERE=docs/results/runners/2026-12-06-six; P=docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl
old() { (cd "$OLD_TREE" && SPECDEC_CACHE="$OLD_CACHE" PYTHONPATH="$OLD_TREE" specdec bench \
  --target qwen2.5-coder-1.5b-instruct --prompts "$OLDPWD/$P" -n 128 --no-hf --json "$OLDPWD/$HERE/$1.json"); }
old plain-old-1
specdec bench --target qwen2.5-coder-1.5b-instruct --prompts $P -n 128 --no-hf --json $HERE/plain-new.json
old plain-old-2
bash docs/results/bench/profile/curves.sh $HERE/curves
