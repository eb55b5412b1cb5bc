#!/usr/bin/env bash
# Issues 13 / 23, third ablation (one bench run; bundled 1.5B target on its default int4 torch runner, greedy,
# 128 new tokens, Spec-Bench 1 per category + GSM8K 5), after two fixes of this stop: runner pass costs measured
# in interleaved sweeps and settled (the cached curve the sized drafters and the guard read had a disturbed 1-row
# pass: 150 ms against 30 ms), and sized draft-model trees that deepen only while the draft's next pass pays.
# plain; the 0.5B draft as a chain and as a sized tree; ADED sized with suffix matches, bundled and broad store.
#   STORE=/path/broad2.safetensors bash docs/results/aded/2026-12-05-c/ablation.sh [PROMPTS]
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. .venv/bin/activate
export HF_HUB_OFFLINE=1
HERE=docs/results/aded/2026-12-05-c
specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct \
  --prompts "${1:-spec_bench:1+gsm8k:5}" --per-category -n 128 -k 4 \
  --setup draft=draft-model --setup draft-tree-sized=draft-model,tree_nodes=16,sized=true \
  --setup aded-sized-suffix=aded,nodes=16,sized=true,suffix=true \
  ${STORE:+--setup aded-sized-suffix-broad=aded,nodes=16,sized=true,suffix=true,store=$STORE} \
  --cost-curve --json "$HERE/${NAME:-ablation}.json" --plot "$HERE/${NAME:-ablation}.png"
