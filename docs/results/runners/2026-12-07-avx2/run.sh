#!/usr/bin/env bash
# The kernel's AVX2 build (qmatmul_avx2.cpp) on a CPU without AVX-512 (2026-12-07, eleventh session: a 2-core AMD EPYC
# with AVX2 only), side by side with llama.cpp: issue 13's piece 1 (22 prompts: every Spec-Bench category and 5 GSM8K
# test questions), 128 new tokens, greedy, the bundled 1.5B and 0.5B draft, every setup interleaved prompt by prompt.
#   1. torch.json: the torch runner on the AVX2 build: plain, draft-model (K 4), the hybrid (confidence, K 8), ADED,
#      prompt lookup; llama-server plain, draft (0.5B) and ngram;
# (A second run of this engine on the llamacpp runner was started and stopped for time: that runner's pass costs are
# in curves.md, from curves.sh.) Resumable: a finished file is skipped.
#   SPECDEC_LLAMA_SERVER=/path/llama-server [VENV=/path/.venv] [OUT=folder] bash docs/results/runners/2026-12-07-avx2/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
HERE=${OUT:-docs/results/runners/2026-12-07-avx2}; P=docs/results/aded/2026-12-05-d/prompts/piece-1.jsonl
done_() { python -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get('complete') else 1)" "$1" 2>/dev/null; }
HYB="hyb=hybrid:confidence:8,policy.threshold=0.6"
done_ $HERE/torch.json || specdec bench --target qwen2.5-coder-1.5b-instruct --draft qwen2.5-coder-0.5b-instruct \
  --prompts $P -n 128 --backend torch --interleave \
  --setup "draft=draft-model:constant:4" --setup "$HYB" --setup "aded=aded" --setup "lookup=prompt-lookup" \
  --llamacpp plain --llamacpp draft --llamacpp ngram --json $HERE/torch.json
