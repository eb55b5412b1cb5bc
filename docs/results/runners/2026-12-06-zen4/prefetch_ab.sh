#!/usr/bin/env bash
# Does prefetching on 1-row passes (on since 63bf98e, measured then on Sapphire Rapids) pay on Zen 4? The kernel alone,
# two trees one edit apart in alternation, twice: NOPF_TREE, a checkout of this commit whose block loops prefetch only
# when R > 1 (lines 106 and 208 of kernels/qmatmul.cpp), and this tree (every pass prefetches). Each tree's kernel is
# built into the cache on first use (keyed by its source). layers_rows.py: the 1.5B's 4-bit layers for 1, 2, 4 rows;
# six_bit_output_layer.py: the output layer's shape as 6-bit and 8-bit codes by rows.
#   NOPF_TREE=/path/checkout [VENV=/path/.venv] bash docs/results/runners/2026-12-06-zen4/prefetch_ab.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
. "${VENV:-.venv}/bin/activate"
HERE=$PWD
for i in 1 2; do
  for tree in "${NOPF_TREE:?}" "$HERE"; do
    echo "## $( [ "$tree" = "$HERE" ] && echo "every pass prefetches" || echo "1-row passes do not prefetch" ) (window $i)"
    (cd "$tree" && PYTHONPATH="$tree" python "$HERE/docs/results/bench/profile/layers_rows.py" \
      && PYTHONPATH="$tree" python "$HERE/docs/results/bench/profile/six_bit_output_layer.py")
  done
done
