#!/usr/bin/env bash
# The figures of docs/scale.md, stage by stage (each resumable: rerun it after an interruption; a finished
# stage is skipped). Needs .venv (this engine) and .venv-vllm (bash eval/setup_vllm.sh).
#   bash docs/results/scale/run.sh STAGE [STAGE ...]      stages: b8 b32 b1 (in this order: "all")
#   N=100 NEW=256 OUT=runs/scale SETUPS="plain aded aded-off ngram suffix draft"   (defaults; also: suffixdecoding)
# aded: this project's ADED proposer with its batch budget (the default); aded-off: every drafted token verified;
# suffix: this project's suffix drafter as a proposer; suffixdecoding: vLLM's own suffix method.
set -euo pipefail
cd "$(dirname "$0")/../../.."
. .venv/bin/activate
RES="${RES:-docs/results/scale/2026-12-05-e}"  # one folder per run (figures are compared within a run only)
OUT="${OUT:-runs/scale/$(basename "$RES")}"; N="${N:-100}"; NEW="${NEW:-256}"  # a new OUT: eval resumes what it holds
export HF_HUB_OFFLINE=1
M15=qwen2.5-coder-1.5b-instruct; M05=qwen2.5-coder-0.5b-instruct

batched() {  # batched B: GSM8K (first N, chat) through vLLM, B requests side by side, one folder per setup
  local b="$1"
  for setup in ${SETUPS:-plain aded aded-off ngram suffix draft}; do
    local args=() name="gsm8k-b$b-$setup" budget='{"budget": "auto"}'
    case $setup in
      ngram) args=(--drafter prompt-lookup -k 4) ;;
      aded) args=(--drafter aded -k 4) ;;
      aded-off) args=(--drafter aded -k 4); budget='{"budget": "off"}' ;;
      suffix) args=(--drafter suffix -k 4) ;;
      suffixdecoding) args=(--drafter suffixdecoding -k 4) ;;  # vLLM's own suffix method (eval/setup_vllm_suffix.sh)
      draft) args=(--draft $M05 -k 4) ;;
    esac
    mkdir -p "$RES"; if [ -f "$RES/$name/summary.json" ]; then echo "done: $name"; continue; fi
    mkdir -p "$OUT"
    SPECDEC_PROPOSER_OPTIONS="$budget" specdec eval run gsm8k_chat --backend vllm --model $M15 "${args[@]}" --limit "$N" -n "$NEW" \
        --vllm-batch "$b" --out "$OUT/$name" --no-plots 2>&1 | tee "$OUT/$name.log"
    mkdir -p "$RES/$name" && cp "$OUT/$name"/{summary.json,summary.md,run.json,results.jsonl} "$RES/$name/"
    grep -hE "specdec .* proposer:|SpecDecoding metrics" "$OUT/$name.log" "$OUT/.$name.vllm.log" > "$RES/$name/proposer.log" 2>/dev/null || true  # the budget's log (the vLLM worker's lines are in .NAME.vllm.log)
  done
}

stage() {
  case "$1" in
    b8) batched 8 ;;
    b32) batched 32 ;;
    b1)  # batch 1, this engine's plain and ADED beside vLLM's: Spec-Bench 1 per category + GSM8K 5, 128 tokens
      [ -f "$RES/batch1.json" ] && { echo "done: b1"; return; }
      local vl="${B1_VLLM:---vllm plain --vllm ngram --vllm aded --vllm aded-nobudget --vllm suffix}" dr=()
      case " $vl " in *" draft "*) dr=(--draft $M05) ;; esac  # vLLM's draft-model setup needs the draft's name
      specdec bench --prompts spec_bench:1+gsm8k:5 --per-category --target $M15 "${dr[@]}" -n 128 ${B1_SETUPS---setup aded=aded} \
          $vl --json "$OUT/batch1.json"
      mkdir -p "$RES" && cp "$OUT/batch1.json" "$RES/batch1.json" ;;
    all) stage b8; stage b32; stage b1 ;;
    *) echo "unknown stage $1 (b8 b32 b1 all)"; exit 2 ;;
  esac
}
for s in "$@"; do stage "$s"; done
