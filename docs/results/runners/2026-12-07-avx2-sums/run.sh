#!/usr/bin/env bash
# The AVX2 kernel after its sums were pinned in registers (commit 7477005; 2026-12-07, twelfth session, the same kind
# of 2-core AMD EPYC with AVX2 only), one window: the pass cost curves (../2026-12-07-avx2/curves.sh: the torch runner
# on the AVX2 build and on PyTorch's int4 kernel, the llamacpp runner, llama-bench) into curves/, then the same bench
# as ../2026-12-07-avx2/run.sh (issue 13's piece 1: 22 prompts, 128 new tokens, greedy, 1.5B + 0.5B draft, every
# setup interleaved prompt by prompt, llama-server's plain, draft and ngram rows) into torch.json. Resumable.
#   LLAMA_BENCH=/path/llama-bench SPECDEC_LLAMA_SERVER=/path/llama-server [VENV=...] bash THIS
set -euo pipefail
cd "$(dirname "$0")/../../../.."
HERE=docs/results/runners/2026-12-07-avx2-sums
bash docs/results/runners/2026-12-07-avx2/curves.sh $HERE/curves | sed -n "/^CPU /,\$p" > $HERE/curves.md.tmp
mv $HERE/curves.md.tmp $HERE/curves.md
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
P=docs/results/aded/2026-12-05-d/prompts/piece-1.jsonl
done_() { python -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get('complete') else 1)" "$1" 2>/dev/null; }
HYB="hyb=hybrid:confidence:8,policy.threshold=0.6"
done_ $HERE/torch.json || specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct \
  --prompts $P -n 128 --backend torch --interleave \
  --setup "draft=draft-model:constant:4" --setup "$HYB" --setup "aded=aded" --setup "lookup=prompt-lookup" \
  --llamacpp plain --llamacpp draft --llamacpp ngram --json $HERE/torch.json
