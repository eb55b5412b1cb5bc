#!/usr/bin/env bash
# Issue 13 / 23 ablation in one bench run (this engine, bundled 1.5B target on its default int4 torch runner, greedy,
# 128 new tokens, Spec-Bench 1 per category + GSM8K 5): plain; ADED as shipped, cost-sized (nodes=16), with suffix
# matches; the suffix drafter; prompt lookup; the 0.5B draft as a tree (8 nodes) and in the hybrid;
# prompt lookup on the llama.cpp runner (with its own plain row); the verification cost curve of both runners.
#   bash docs/results/aded/2026-12-05/ablation.sh [PROMPTS]
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. .venv/bin/activate
export HF_HUB_OFFLINE=1
HERE=docs/results/aded/2026-12-05
specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct \
  --prompts "${1:-spec_bench:1+gsm8k:5}" --per-category -n 128 -k 4 \
  --setup aded=aded --setup aded-sized=aded,nodes=16,sized=true --setup aded-suffix=aded,suffix=true \
  --setup suffix=suffix --setup prompt-lookup=prompt-lookup --setup hybrid=hybrid \
  --setup draft-tree=draft-model,tree_nodes=8 --setup lookup-llamacpp=prompt-lookup,backend=llamacpp \
  --cost-curve --json "$HERE/ablation.json" --plot "$HERE/ablation.png"
