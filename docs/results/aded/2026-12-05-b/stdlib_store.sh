#!/usr/bin/env bash
# Issue 13: a code store from the Python standard library's sources (`--from stdlib`: code that lies on every
# machine, not an evaluation set; its tests, IDLE, lib2to3, tkinter and turtledemo left out), and broad ones: the
# same plus the 0.5B's answers to GSM8K-train and MMLU prompts (docs/results/aded/corpus/).
#   bash docs/results/aded/2026-12-05-b/stdlib_store.sh OUT_DIR
# stdlib, broad: tri-grams seen at least twice (the answers' singletons dropped too); broad-all: every tri-gram;
# broad2: the answers counted twice, so that min-count 2 keeps their tri-grams (the store the ablation used).
# The sources are recorded by name, so the same Python version and corpus give the same file (and sha256).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. .venv/bin/activate
export HF_HUB_OFFLINE=1
OUT="${1:?an output folder}"; mkdir -p "$OUT"
python -c 'import platform, sysconfig; print("python", platform.python_version(), sysconfig.get_paths()["stdlib"])'
T=qwen2.5-coder-1.5b-instruct; C=docs/results/aded/corpus
A="--from $C/self_gsm8k_05b.jsonl --from $C/self_mmlu_05b.jsonl"
specdec aded build --from stdlib --tokenizer $T --min-count 2 --out "$OUT/stdlib.safetensors"
specdec aded build --from stdlib $A --tokenizer $T --min-count 2 --out "$OUT/broad.safetensors"
specdec aded build --from stdlib $A --tokenizer $T --out "$OUT/broad-all.safetensors"
specdec aded build --from stdlib $A $A --tokenizer $T --min-count 2 --out "$OUT/broad2.safetensors"
sha256sum "$OUT"/*.safetensors
