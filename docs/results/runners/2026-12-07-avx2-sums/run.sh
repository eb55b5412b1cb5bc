#!/usr/bin/env bash
# The AVX2 kernel after its sums were pinned in registers (commit 7477005; 2026-12-07, twelfth session, the same kind
# of 2-core AMD EPYC with AVX2 only), one window: the pass cost curves (../2026-12-07-avx2/curves.sh: the torch runner
# on the AVX2 build and on PyTorch's int4 kernel, the llamacpp runner, llama-bench) into curves/, then the same bench
# as ../2026-12-07-avx2/run.sh (issue 13's piece 1: 22 prompts, 128 new tokens, greedy, 1.5B + 0.5B draft, every
# setup interleaved prompt by prompt, llama-server's plain, draft and ngram rows) into torch.json. Resumable.
#   LLAMA_BENCH=/path/llama-bench SPECDEC_LLAMA_SERVER=/path/llama-server [VENV=...] bash THIS
set -euo pipefail
cd "$(dirname "$0")/../../../.."
HERE=docs/results/runners/2026-12-07-avx2-sums
bash docs/results/runners/2026-12-07-avx2/curves.sh $HERE/curves | sed -n "/^CPU /,\$p" > $HERE/curves.md.tmp
mv $HERE/curves.md.tmp $HERE/curves.md
OUT=$HERE bash docs/results/runners/2026-12-07-avx2/run.sh
