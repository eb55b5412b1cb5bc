#!/usr/bin/env bash
# Issue 13: does a larger corpus of the target's own answers make a better store? The corpus of run j
# (docs/results/aded/corpus/self_broad_15b.jsonl: the 1.5B's answers through this engine to the `broad` training
# prompts, none from a benchmark) extended from 207 to more answers on 2026-12-07 (thirteenth session:
# `specdec aded distill --engine --model qwen2.5-coder-1.5b-instruct --prompts broad --limit 700 --max-new-tokens 128
# --threads 2 --out docs/results/aded/corpus/self_broad_15b.jsonl`, resumed from answer 208). Stores from its first N
# answers + the 0.5B's GSM8K-train answers (the shipped recipe), replayed along run h's 85 held-out references with
# ADED's trees of 16 and of 5 nodes (depth 4): tau = accepted tokens a round + 1, no timing involved.
#   bash docs/results/aded/2026-12-07-k/stores.sh OUT_DIR N [N ...]
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. .venv/bin/activate
export HF_HUB_OFFLINE=1
OUT="${1:?an output folder}"; shift; mkdir -p "$OUT"
T=qwen2.5-coder-1.5b-instruct; C=docs/results/aded/corpus; H=docs/results/aded/2026-12-07-h/full
echo "answers in the corpus: $(wc -l < $C/self_broad_15b.jsonl)"
S="--store bundled"
for N in "$@"; do
  head -n "$N" $C/self_broad_15b.jsonl > "$OUT/broad-$N.jsonl"
  specdec aded build --from "$OUT/broad-$N.jsonl" --from $C/self_gsm8k_05b.jsonl --tokenizer $T \
    --out "$OUT/broad$N-gsm05.safetensors"
  S="$S --store $OUT/broad$N-gsm05.safetensors"
done
sha256sum "$OUT"/*.safetensors
R=""; for i in 1 2 3 4; do R="$R --bench-refs $H/piece-$i.json"; done
for NODES in 16 5; do
  python docs/results/aded/2026-12-05-b/stores.py $R --nodes $NODES --depth 4 $S --json "$OUT/stores-$NODES.json"
done
