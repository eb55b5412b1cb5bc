#!/usr/bin/env bash
# The evaluation figures of docs/results/eval/README.md, stage by stage, on an idle machine.
#   bash eval/final_figures.sh STAGE [STAGE ...]     (stages below; "all" runs them in order)
# Every stage is resumable: rerun the same stage after an interruption. Runs go to $OUT (default
# runs/final); finished summaries, tables, plots and per-item results are copied to docs/results/eval/.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
OUT="${OUT:-runs/final}"
RES="docs/results/eval"
M05=qwen2.5-coder-0.5b-instruct
M15=qwen2.5-coder-1.5b-instruct
S5=abstract_algebra,anatomy,business_ethics,formal_logic,us_foreign_policy  # the fixed agreement subset
EVAL="python -m eval.cli"  # = `specdec eval` once mounted
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

keep() {  # copy a finished run's results into docs/results/eval/<name>
  local run="$1" name="$2"
  mkdir -p "$RES/$name"
  cp "$run/summary.md" "$run/summary.json" "$run/run.json" "$run/results.jsonl" "$RES/$name/"
  [ -d "$run/plots" ] && cp -r "$run/plots" "$RES/$name/"
  echo "kept $run -> $RES/$name"
}

lmeval() {
  [ -x .venv-lmeval/bin/lm_eval ] || bash eval/setup_lmeval.sh
  specdec models path $M05 >/dev/null 2>&1 || specdec models pull $M05
  .venv-lmeval/bin/lm_eval --model hf --model_args "pretrained=$(specdec models path $M05),dtype=float32" \
      --batch_size 1 --log_samples "$@"
}

lmeval_vllm() {  # lm-eval's own vLLM backend, in .venv-vllm, with the worker's environment (preloads, binding)
  [ -x .venv-vllm/bin/python ] || bash eval/setup_vllm.sh
  [ -x .venv-vllm/bin/lm_eval ] || .venv-vllm/bin/pip install -q lm-eval==0.4.13  # adds packages, changes none
  specdec models path $M05 >/dev/null 2>&1 || specdec models pull $M05
  ( eval "$(python -m specdec.backends.vllm_client)"
    .venv-vllm/bin/python -m eval.lm_eval_vllm --model vllm --model_args "pretrained=$(specdec models path $M05),dtype=float32,max_model_len=4096" \
        --batch_size auto --log_samples "$@" )
}

stage() {
  case "$1" in
    agree-mmlu)  # ~25-40 min: lm-eval and ours, 561 questions, float32
      specdec eval lm-eval export mmlu --subjects $S5 --out "$OUT/agree-mmlu/lm-tasks"
      ls "$OUT"/agree-mmlu/lm-out/*/results_*.json >/dev/null 2>&1 || \
        lmeval --include_path "$OUT/agree-mmlu/lm-tasks/tasks" --tasks mmlu_local --output_path "$OUT/agree-mmlu/lm-out"
      $EVAL run mmlu --model $M05 --subjects $S5 --dtype float32 --out "$OUT/agree-mmlu/ours"
      mkdir -p "$RES/agreement"
      specdec eval lm-eval compare "$OUT/agree-mmlu/lm-out" "$OUT/agree-mmlu/ours" \
          --json "$RES/agreement/mmlu.json" | tee "$RES/agreement/mmlu.md" ;;
    agree-gsm8k)  # ~1-1.5 h: lm-eval and ours, first 100 test questions, 5-shot, float32
      specdec eval lm-eval export gsm8k --limit 100 --out "$OUT/agree-gsm8k/lm-tasks"
      ls "$OUT"/agree-gsm8k/lm-out/*/results_*.json >/dev/null 2>&1 || \
        lmeval --include_path "$OUT/agree-gsm8k/lm-tasks/tasks" --tasks gsm8k_local --output_path "$OUT/agree-gsm8k/lm-out"
      $EVAL run gsm8k --model $M05 --limit 100 --dtype float32 --out "$OUT/agree-gsm8k/ours"
      mkdir -p "$RES/agreement"
      specdec eval lm-eval compare "$OUT/agree-gsm8k/lm-out" "$OUT/agree-gsm8k/ours" \
          --json "$RES/agreement/gsm8k.json" | tee "$RES/agreement/gsm8k.md" ;;
    agree-gsm8k-vllm)  # ~20-30 min: the same check through vLLM on both sides (lm-eval --model vllm, ours --backend vllm)
      specdec eval lm-eval export gsm8k --limit 100 --out "$OUT/agree-gsm8k-vllm/lm-tasks"
      ls "$OUT"/agree-gsm8k-vllm/lm-out/*/results_*.json >/dev/null 2>&1 || \
        lmeval_vllm --include_path "$OUT/agree-gsm8k-vllm/lm-tasks/tasks" --tasks gsm8k_local --output_path "$OUT/agree-gsm8k-vllm/lm-out"
      $EVAL run gsm8k --model $M05 --limit 100 --dtype float32 --backend vllm --vllm-batch --max-context 4096 \
          --out "$OUT/agree-gsm8k-vllm/ours"
      mkdir -p "$RES/agreement"
      specdec eval lm-eval compare "$OUT/agree-gsm8k-vllm/lm-out" "$OUT/agree-gsm8k-vllm/ours" \
          --json "$RES/agreement/gsm8k-vllm.json" | tee "$RES/agreement/gsm8k-vllm.md" ;;
    mmlu-05b)  # ~10 min: 0-shot letter, 10 questions per subject (570), seed 0
      $EVAL run mmlu --model $M05 --per-subject 10 --seed 0 --out "$OUT/mmlu-05b"
      keep "$OUT/mmlu-05b" mmlu-0shot-qwen2.5-coder-0.5b ;;
    mmlu-15b)  # ~30 min
      $EVAL run mmlu --model $M15 --per-subject 10 --seed 0 --out "$OUT/mmlu-15b"
      keep "$OUT/mmlu-15b" mmlu-0shot-qwen2.5-coder-1.5b ;;
    mmlu-15b-int4)  # ~15 min: the same on the torch runner's int4 weights (built from the GGUF's Q4_K codes)
      $EVAL run mmlu --model $M15 --backend torch --weights int4 --per-subject 10 --seed 0 --out "$OUT/mmlu-15b-int4"
      keep "$OUT/mmlu-15b-int4" mmlu-0shot-qwen2.5-coder-1.5b-int4 ;;
    mmlu-15b-llamacpp)  # ~15 min: the same through llama.cpp (the GGUF as shipped)
      $EVAL run mmlu --model $M15 --backend llamacpp --per-subject 10 --seed 0 --out "$OUT/mmlu-15b-llamacpp"
      keep "$OUT/mmlu-15b-llamacpp" mmlu-0shot-qwen2.5-coder-1.5b-llamacpp ;;
    gsm8k-15b-int4)  # ~25 min: chat format, first 100, int4 torch; the hybrid drafter (greedy output identical
      # to plain int4 decoding: the int4 kernels are batch-invariant, docs/runners.md)
      $EVAL run gsm8k_chat --model $M15 --backend torch --weights int4 --draft $M05 --drafter hybrid \
          --policy confidence -k 8 --policy-opt threshold=0.6 --limit 100 --out "$OUT/gsm8k-chat-15b-int4"
      keep "$OUT/gsm8k-chat-15b-int4" gsm8k-chat-qwen2.5-coder-1.5b-int4 ;;
    gsm8k-15b-llamacpp)  # ~35 min: chat format, first 100, llama.cpp plain decoding
      $EVAL run gsm8k_chat --model $M15 --backend llamacpp --limit 100 --out "$OUT/gsm8k-chat-15b-llamacpp"
      keep "$OUT/gsm8k-chat-15b-llamacpp" gsm8k-chat-qwen2.5-coder-1.5b-llamacpp ;;
    gsm8k-05b)  # ~1-1.5 h: chat format, first 100; prompt lookup + the paired plain run
      $EVAL run gsm8k_chat --model $M05 --drafter prompt-lookup -k 4 --compare-plain --limit 100 \
          --out "$OUT/gsm8k-chat-05b"
      keep "$OUT/gsm8k-chat-05b" gsm8k-chat-qwen2.5-coder-0.5b ;;
    gsm8k-15b)  # ~2.5-3.5 h (eager): chat format, first 100; 0.5B draft model + the paired plain run
      $EVAL run gsm8k_chat --model $M15 --draft $M05 -k 4 --compare-plain --limit 100 \
          --out "$OUT/gsm8k-chat-15b"
      keep "$OUT/gsm8k-chat-15b" gsm8k-chat-qwen2.5-coder-1.5b ;;
    gsm8k-05b-exact)  # ~15 min: chat format, first 30, bf16 exact mode (token-for-token identity), compiled
      $EVAL run gsm8k_chat --model $M05 --drafter prompt-lookup -k 4 --exact-len 8 --compile --compare-plain \
          --limit 30 --out "$OUT/gsm8k-chat-05b-exact"
      keep "$OUT/gsm8k-chat-05b-exact" gsm8k-chat-qwen2.5-coder-0.5b-exact-identity ;;
    gsm8k-vllm)  # ~25-35 min incl. 2 start-ups: both models, chat format, first 100, all prompts at once
      [ -x .venv-vllm/bin/python ] || bash eval/setup_vllm.sh
      $EVAL run gsm8k_chat --model $M05 --backend vllm --vllm-batch --limit 100 --out "$OUT/vllm-gsm8k-chat-05b-100"
      keep "$OUT/vllm-gsm8k-chat-05b-100" gsm8k-chat-qwen2.5-coder-0.5b-vllm
      $EVAL run gsm8k_chat --model $M15 --backend vllm --vllm-batch --limit 100 --out "$OUT/vllm-gsm8k-chat-15b-100"
      keep "$OUT/vllm-gsm8k-chat-15b-100" gsm8k-chat-qwen2.5-coder-1.5b-vllm ;;
    identity-fp32)  # ~45-60 min: token-for-token identity with and without speculation, float32, first 30
      $EVAL run gsm8k_chat --model $M05 --drafter prompt-lookup -k 4 --compare-plain --limit 30 --dtype float32 \
          --out "$OUT/gsm8k-chat-05b-fp32"
      keep "$OUT/gsm8k-chat-05b-fp32" gsm8k-chat-qwen2.5-coder-0.5b-fp32-identity ;;
    vllm)  # ~1-1.5 h incl. 2 start-ups: the 1.5B through vLLM, plain and with the 0.5B draft, first 30
      [ -x .venv-vllm/bin/python ] || bash eval/setup_vllm.sh
      $EVAL run gsm8k_chat --model $M15 --backend vllm --limit 30 --out "$OUT/vllm-gsm8k-chat-15b-plain"
      $EVAL run gsm8k_chat --model $M15 --backend vllm --draft $M05 -k 4 --limit 30 \
          --out "$OUT/vllm-gsm8k-chat-15b-draft"
      keep "$OUT/vllm-gsm8k-chat-15b-plain" vllm-gsm8k-chat-qwen2.5-coder-1.5b-plain
      keep "$OUT/vllm-gsm8k-chat-15b-draft" vllm-gsm8k-chat-qwen2.5-coder-1.5b-draft ;;
    report)  # seconds: the side-by-side table and speed plot of every finished generation run
      runs=()
      for d in gsm8k-chat-05b gsm8k-chat-05b-exact vllm-gsm8k-chat-05b-100 vllm-gsm8k-chat-15b-100 gsm8k-chat-15b gsm8k-chat-05b-fp32 vllm-gsm8k-chat-15b-plain vllm-gsm8k-chat-15b-draft; do
        [ -f "$OUT/$d/summary.json" ] && runs+=("$OUT/$d")
      done
      if [ ${#runs[@]} -eq 0 ]; then echo "no finished generation runs under $OUT yet" >&2; exit 1; fi
      $EVAL report "${runs[@]}" --out "$RES/speed" ;;
    all)
      for s in agree-mmlu mmlu-05b mmlu-15b gsm8k-05b gsm8k-15b identity-fp32 agree-gsm8k vllm report; do stage "$s"; done ;;
    quant)  # part 5 of the CPU-speed issue: int4 torch and llama.cpp next to the bf16 figures
      for s in mmlu-15b-int4 mmlu-15b-llamacpp gsm8k-15b-int4 gsm8k-15b-llamacpp; do stage "$s"; done ;;
    *) echo "unknown stage $1 (agree-mmlu agree-gsm8k agree-gsm8k-vllm mmlu-05b mmlu-15b mmlu-15b-int4 mmlu-15b-llamacpp gsm8k-15b-int4 gsm8k-15b-llamacpp quant gsm8k-05b gsm8k-05b-exact gsm8k-vllm gsm8k-15b identity-fp32 vllm report all)" >&2
       exit 2 ;;
  esac
}

[ $# -ge 1 ] || { echo "usage: bash eval/final_figures.sh STAGE [STAGE ...]" >&2; exit 2; }
for s in "$@"; do stage "$s"; done
