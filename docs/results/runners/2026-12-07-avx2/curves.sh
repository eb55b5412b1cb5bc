#!/usr/bin/env bash
# Pass cost by rows on a CPU without AVX-512 (2026-12-07: 2-core AMD EPYC, AVX2 only), one window: this engine's
# int4 torch runner on the kernel's AVX2 build (default there) and on PyTorch's int4 kernel (SPECDEC_QKERNEL=aten,
# the path before the AVX2 build), this engine's llamacpp runner (llama.cpp through llama-cpp-python), all via
# `specdec bench --cost-curve` (one pass of 1..64 rows after 256 committed tokens, fastest of 5), and llama.cpp's
# own `llama-bench` (prompt passes of N tokens after 256 tokens of context, -r 5).
#   LLAMA_BENCH=/path/llama-bench [VENV=/path/.venv] bash docs/results/runners/2026-12-07-avx2/curves.sh OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
OUT="${1:?OUT_DIR}"; mkdir -p "$OUT"
M=qwen2.5-coder-1.5b-instruct
GGUF="$(python -c "from specdec.runners import _gguf_of; print(_gguf_of('$M', None))")"
run() {  # NAME "ENV=VALUE ..." "bench options"
  [ -f "$OUT/$1.json" ] || env $2 specdec bench --target $M --prompts gsm8k:1 -n 8 --no-hf --cost-curve $3 \
    --json "$OUT/$1.json" 2>&1 | tail -2; }
run torch_avx2 "" "--backend torch"
run torch_aten "SPECDEC_QKERNEL=aten" "--backend torch"
run llamacpp "" "--backend llamacpp"
[ -f "$OUT/llama_bench.json" ] || "${LLAMA_BENCH:?LLAMA_BENCH=path of llama-bench}" -m "$GGUF" -t 2 \
  -p 1,2,4,8,12,16,24,32,48,64 -n 0 -d 256 -r 5 -o json > "$OUT/llama_bench.json"
python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
curves = {name: next(iter(json.loads((out / f"{name}.json").read_text())["cost_curves"].values()))
          for name in ("torch_avx2", "torch_aten", "llamacpp")}
mach = json.loads((out / "torch_avx2.json").read_text())["machine"]
print(f"CPU {mach['cpu']}, kernel {mach.get('qkernel')}")
lb = {r["n_prompt"]: r["avg_ns"] / 1e6 for r in json.loads((out / "llama_bench.json").read_text()) if r["n_prompt"]}
rows = curves["torch_avx2"]["rows"]
print("| rows | " + " | ".join(map(str, rows)) + " |")
print("|---|" + "---:|" * len(rows))
label = {"torch_avx2": "this engine, torch runner, AVX2 build (ms)", "torch_aten": "torch runner, PyTorch's int4 (ms)",
         "llamacpp": "this engine, llamacpp runner (ms)"}
for name, c in curves.items():
    ms = dict(zip(c["rows"], c["ms"]))
    print(f"| {label[name]} | " + " | ".join(f"{ms[r]:.1f}" if r in ms else "-" for r in rows) + " |")
    print("| x its 1-row pass | " + " | ".join(f"{ms[r] / ms[1]:.2f}" if r in ms else "-" for r in rows) + " |")
print("| llama.cpp (llama-bench, ms) | " + " | ".join(f"{lb[r]:.1f}" if r in lb else "-" for r in rows) + " |")
print("| x its 1-row pass | " + " | ".join(f"{lb[r] / lb[1]:.2f}" if r in lb else "-" for r in rows) + " |")
PY
