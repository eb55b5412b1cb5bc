#!/usr/bin/env bash
# Issue 13's full-size run: Spec-Bench 5 per category + the first 20 GSM8K test questions, 128 new tokens, greedy,
# the bundled 1.5B target on its default runner (int4 on this project's VNNI kernel); this engine's plain, ADED
# (defaults; sized trees with suffix matches, bundled and broad2 store) and prompt lookup, interleaved prompt by
# prompt, and llama.cpp's own plain and ngram-simple decoding through llama-server on the same prompt ids and GGUF.
# In pieces (pieces.py: prompt i in piece i % 4), one bench run each with every setup side by side; a finished
# piece is skipped on a rerun; merge.py makes the tables over all finished pieces.
#   STORE=/path/broad2.safetensors SPECDEC_LLAMA_SERVER=/path/llama-server bash docs/results/aded/2026-12-05-d/full.sh
# (STORE: `bash docs/results/aded/2026-12-05-b/stdlib_store.sh DIR` builds it in seconds)
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. .venv/bin/activate
export HF_HUB_OFFLINE=1
HERE=docs/results/aded/2026-12-05-d
python "$HERE/pieces.py" "$HERE/prompts" "${PIECES:-4}"
for p in "$HERE"/prompts/piece-*.jsonl; do
  name=$(basename "$p" .jsonl)
  if python -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get('complete') else 1)" \
      "$HERE/$name.json" 2>/dev/null; then echo "done: $name"; continue; fi
  specdec bench --target qwen2.5-coder-1.5b-instruct --prompts "$p" -n 128 -k 4 \
    --setup aded=aded --setup aded-sized-suffix=aded,nodes=16,sized=true,suffix=true \
    --setup aded-sized-suffix-broad=aded,nodes=16,sized=true,suffix=true,store="${STORE:?STORE=broad2 store}" \
    --setup prompt-lookup=prompt-lookup \
    --llamacpp plain --llamacpp ngram \
    --json "$HERE/$name.json"
done
python "$HERE/merge.py" "$HERE" | tee "$HERE/full.md"
