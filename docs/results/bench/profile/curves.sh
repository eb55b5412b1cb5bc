#!/usr/bin/env bash
# Pass cost by rows, this engine and llama.cpp side by side on one machine, one window (about 4 minutes):
# this engine's int4 torch runner (`specdec bench --cost-curve`: one pass of 1..64 rows after 256 committed tokens,
# fastest of 5) with the kernel's VNNI path only (SPECDEC_QKERNEL=vnni) and as it runs by default (auto: AMX
# from AMX_MIN_ROWS rows where the CPU has AMX), and llama.cpp's (`llama-bench`: prompt passes of N tokens after
# 256 tokens of context, -r 5).
#   LLAMA_BENCH=/path/llama-bench [VENV=/path/.venv] bash docs/results/bench/profile/curves.sh OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
OUT="${1:?OUT_DIR}"; mkdir -p "$OUT"
M=qwen2.5-coder-1.5b-instruct
GGUF="$(python -c "from specdec.runners import _gguf_of; print(_gguf_of('$M', None))")"
SPECDEC_QKERNEL=vnni specdec bench --target $M --prompts gsm8k:1 -n 8 --no-hf --cost-curve \
  --json "$OUT/engine_curve_vnni.json" 2>&1 | tail -3
specdec bench --target $M --prompts gsm8k:1 -n 8 --no-hf --cost-curve --json "$OUT/engine_curve.json" 2>&1 | tail -3
"${LLAMA_BENCH:?LLAMA_BENCH=path of llama-bench}" -m "$GGUF" -t 2 -p 1,2,4,8,12,16,24,32,48,64 -n 0 -d 256 -r 5 -o json \
  > "$OUT/llama_bench.json"
python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def engine(name):
    path = out / name
    return next(iter(json.loads(path.read_text())["cost_curves"].values())) if path.is_file() else None
curve, vnni = engine("engine_curve.json"), engine("engine_curve_vnni.json")
mach = json.loads((out / "engine_curve.json").read_text())["machine"]
print(f"CPU {mach['cpu']}, AMX {mach.get('cpu_amx')}, default kernel from {mach.get('amx_min_rows')} rows on AMX")
lb = {r["n_prompt"]: r["avg_ns"] / 1e6 for r in json.loads((out / "llama_bench.json").read_text()) if r["n_prompt"]}
rows = curve["rows"]
print("| rows | " + " | ".join(map(str, rows)) + " |")
print("|---|" + "---:|" * len(rows))
if vnni:
    print("| this engine, int4, VNNI only (ms) | " + " | ".join(f"{ms:.1f}" for ms in vnni["ms"]) + " |")
    print("| x its 1-row pass | " + " | ".join(f"{ms / vnni['ms'][0]:.2f}" for ms in vnni["ms"]) + " |")
print("| this engine, int4, default (ms) | " + " | ".join(f"{ms:.1f}" for ms in curve["ms"]) + " |")
print("| x its 1-row pass | " + " | ".join(f"{ms / curve['ms'][0]:.2f}" for ms in curve["ms"]) + " |")
print("| llama.cpp (llama-bench, ms) | " + " | ".join(f"{lb[r]:.1f}" if r in lb else "-" for r in rows) + " |")
print("| x its 1-row pass | " + " | ".join(f"{lb[r] / lb[1]:.2f}" if r in lb else "-" for r in rows) + " |")
PY
