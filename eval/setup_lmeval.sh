#!/usr/bin/env bash
# Build .venv-lmeval: lm-evaluation-harness 0.4.13 for the agreement check (docs/eval.md). It is kept out of
# the main venv because it pulls datasets/evaluate/scikit-learn/... that the project does not need; it uses
# the same torch (2.13.0+cpu) and transformers (5.24.0) as the main env. About 1-2 minutes.
# Usage: bash eval/setup_lmeval.sh [VENV_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-lmeval}"
[ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/pip" install -q torch==2.13.0 transformers==5.24.0 accelerate "lm-eval[hf]==0.4.13"
"$VENV/bin/python" -c "import lm_eval, transformers; print('lm-eval ok, transformers', transformers.__version__)"
echo "ok: $VENV"
