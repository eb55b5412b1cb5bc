#!/usr/bin/env bash
# For a session lent a GPU (the `device` tool): one short run, about 3 minutes on an H200.
#   run(command="bash docs/results/scale/gpu_check.sh", timeout_s=420)
# Uses the machine's own python3 (torch + transformers are there; nothing is installed). Writes to $OUT:
# tests.log (the CUDA tests of the torch runner: greedy speculation == plain decoding on CUDA) and
# gpu_probe.json (pass cost by rows, plain decoding ms a token). Put the figures in docs/scale.md.
set -o pipefail
export PYTHONPATH="$PWD:$PWD/tests" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
OUT="${OUT:-/tmp/gpu-check}"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/gpu.txt"
python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/runners/test_device.py 2>&1 | tee "$OUT/tests.log"
python3 docs/results/scale/gpu_probe.py --json "$OUT/gpu_probe.json" 2>&1 | tee "$OUT/probe.log"
