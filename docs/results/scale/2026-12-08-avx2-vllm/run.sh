#!/usr/bin/env bash
# This engine beside vLLM-CPU in one bench on a CPU without bf16 matrix instructions (2026-12-08, fourteenth session:
# a 2-core AMD EPYC Zen 3, AVX2 only; vLLM runs in float32 there, vllm_client.worker_dtype): the first 8 prompts of
# issue 13's piece 1 (prompts.jsonl = `head -n 8 docs/results/aded/2026-12-05-d/prompts/piece-1.jsonl`: Spec-Bench
# writing 2, roleplay, reasoning, math, coding 2, extraction), 128 new tokens, greedy, the bundled 1.5B. Rows: this engine's plain
# decoding, ADED and prompt lookup (torch runner, int4), llama-server plain and ngram (the no-AMX native build of
# ../shared/notes/llama-cpp.md), vLLM plain, vLLM's own ngram, and this project's ADED inside vLLM (custom_class
# proposer). vLLM's rows run one worker each over all prompts (its start-up not timed). vLLM's `suffix` method was
# not run (arctic-inference not built into this venv: eval/setup_vllm_suffix.sh).
#   SPECDEC_LLAMA_SERVER=/path/llama-server [VENV=/path/.venv] [OUT=folder] bash docs/results/scale/2026-12-08-avx2-vllm/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
HERE=${OUT:-docs/results/scale/2026-12-08-avx2-vllm}
specdec bench --target qwen2.5-coder-1.5b-instruct --prompts docs/results/scale/2026-12-08-avx2-vllm/prompts.jsonl \
  -n 128 --backend torch --interleave --setup "aded=aded" --setup "lookup=prompt-lookup" \
  --llamacpp plain --llamacpp ngram --vllm plain --vllm ngram --vllm aded \
  --json $HERE/bench.json 2>&1 | tee $HERE/bench.txt
