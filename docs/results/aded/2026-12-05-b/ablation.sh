#!/usr/bin/env bash
# Issues 13 / 23, second ablation (one bench run; this engine, bundled 1.5B target on its default int4 torch runner,
# greedy, 128 new tokens, Spec-Bench 1 per category + GSM8K 5): plain; the 0.5B draft as a chain, as an 8-node tree
# and as a tree cut per round by the target's measured pass costs (sized=true, 16 nodes at most); ADED sized, and
# sized with suffix matches (the two parts that paid best in the first ablation, together), the same with the broad
# store (STORE: stdlib_store.sh's broad-all store; left out when unset), and suffix and prompt lookup beside them.
#   NAME=ablation STORE=/path/broad2.safetensors bash docs/results/aded/2026-12-05-b/ablation.sh [PROMPTS]
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. .venv/bin/activate
export HF_HUB_OFFLINE=1
HERE=docs/results/aded/2026-12-05-b
specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct \
  --prompts "${1:-spec_bench:1+gsm8k:5}" --per-category -n 128 -k 4 \
  --setup draft=draft-model --setup draft-tree=draft-model,tree_nodes=8 \
  --setup draft-tree-sized=draft-model,tree_nodes=16,sized=true \
  --setup aded-sized=aded,nodes=16,sized=true --setup aded-sized-suffix=aded,nodes=16,sized=true,suffix=true \
  ${STORE:+--setup aded-sized-suffix-broad=aded,nodes=16,sized=true,suffix=true,store=$STORE} \
  --setup suffix=suffix --setup prompt-lookup=prompt-lookup \
  --cost-curve --json "$HERE/${NAME:-ablation}.json" --plot "$HERE/${NAME:-ablation}.png"
