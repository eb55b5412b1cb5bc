#!/usr/bin/env bash
# Issue 13: stores from the *target's* own answers (the 1.5B through this engine, `specdec aded distill --engine`)
# to the `broad` training prompts (GSM8K train, MMLU val, SST-2 train, the standard library's documented functions,
# topic templates over MMLU's subject names; none from a benchmark), against the bundled store (the 0.5B's answers
# to GSM8K train), by τ replayed along run h's 85 held-out references (docs/results/aded/2026-12-07-h/full).
#   bash docs/results/aded/2026-12-07-j/stores.sh OUT_DIR [N_ANSWERS]
# N_ANSWERS: build from the corpus's first N answers only (the prompts are interleaved, so a prefix is a balanced mix).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. .venv/bin/activate
export HF_HUB_OFFLINE=1
OUT="${1:?an output folder}"; mkdir -p "$OUT"; N="${2:-}"
T=qwen2.5-coder-1.5b-instruct; C=docs/results/aded/corpus; H=docs/results/aded/2026-12-07-h/full
B=$C/self_broad_15b.jsonl
if [ -n "$N" ]; then head -n "$N" $B > "$OUT/broad-$N.jsonl"; B="$OUT/broad-$N.jsonl"; fi
echo "answers: $(wc -l < $B)"
specdec aded build --from $B --tokenizer $T --out "$OUT/broad15.safetensors"
# the same answers without their prompts (the topic templates imitate kinds of request, e.g. "Compose an engaging
# blog post about ..."): what the store gains from the answers alone
python -c 'import json, sys; [print(json.dumps({"answer": json.loads(l)["answer"]})) for l in open(sys.argv[1])]' $B \
  > "$OUT/answers-only.jsonl"
specdec aded build --from "$OUT/answers-only.jsonl" --tokenizer $T --out "$OUT/broad15-answers.safetensors"
specdec aded build --from $B --from $C/self_gsm8k_05b.jsonl --tokenizer $T --out "$OUT/broad15-gsm05.safetensors"
specdec aded build --from stdlib --from $B --from $B --from $C/self_gsm8k_05b.jsonl --from $C/self_gsm8k_05b.jsonl \
  --tokenizer $T --min-count 2 --out "$OUT/broad15-gsm05-stdlib.safetensors"
sha256sum "$OUT"/*.safetensors
R=""; for i in 1 2 3 4; do R="$R --bench-refs $H/piece-$i.json"; done
for NODES in 16 5; do
  python docs/results/aded/2026-12-05-b/stores.py $R --nodes $NODES --depth 4 --store empty --store bundled \
    --store "$OUT/broad15.safetensors" --store "$OUT/broad15-answers.safetensors" --store "$OUT/broad15-gsm05.safetensors" \
    --store "$OUT/broad15-gsm05-stdlib.safetensors" --json "$OUT/stores-$NODES.json"
done
