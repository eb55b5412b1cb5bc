#!/usr/bin/env bash
# Issue 13: a code store from the Python standard library's sources (code that lies on every machine; not an
# evaluation set), and a broad one: the same plus the 0.5B's answers to GSM8K-train and MMLU prompts.
#   bash docs/results/aded/2026-12-05-b/stdlib_store.sh OUT_DIR
# The standard library's .py files without its tests, IDLE, lib2to3, tkinter and turtledemo, copied (build --from
# takes every file of a folder) and counted with the target's tokenizer, tri-grams seen at least twice
# (broad-all: every tri-gram; broad2: the answers counted twice, so that min-count 2 keeps their tri-grams).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. .venv/bin/activate
export HF_HUB_OFFLINE=1
OUT="${1:?an output folder}"; SRC="$OUT/stdlib-src"
LIB="$(python -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"
mkdir -p "$SRC"
DEST="$(realpath "$SRC")"
( cd "$LIB" && find . -name "*.py" -not -path "*/test/*" -not -path "*/tests/*" -not -path "./test*" \
    -not -path "./idlelib/*" -not -path "./lib2to3/*" -not -path "./tkinter/*" -not -path "./turtledemo/*" \
    -not -path "./site-packages/*" -print0 | tar cf - --null -T - | tar xf - -C "$DEST" )
echo "$(find "$SRC" -name '*.py' | wc -l) files from $LIB (python $(python -c 'import platform; print(platform.python_version())'))"
T=qwen2.5-coder-1.5b-instruct; C=docs/results/aded/corpus
specdec aded build --from "$SRC" --tokenizer $T --min-count 2 --out "$OUT/stdlib.safetensors"
specdec aded build --from "$SRC" --from $C/self_gsm8k_05b.jsonl --from $C/self_mmlu_05b.jsonl --tokenizer $T \
    --min-count 2 --out "$OUT/broad.safetensors"    # tri-grams seen once dropped (the answers' too)
specdec aded build --from "$SRC" --from $C/self_gsm8k_05b.jsonl --from $C/self_mmlu_05b.jsonl --tokenizer $T \
    --out "$OUT/broad-all.safetensors"             # every tri-gram kept, like the bundled store
A="--from $C/self_gsm8k_05b.jsonl --from $C/self_mmlu_05b.jsonl"
specdec aded build --from "$SRC" $A $A --tokenizer $T --min-count 2 --out "$OUT/broad2.safetensors"  # the answers
sha256sum "$OUT"/*.safetensors                                                  # twice: min-count 2 keeps them
