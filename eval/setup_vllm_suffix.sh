#!/usr/bin/env bash
# vLLM's `suffix` speculative method (SuffixDecoding) on a CPU build: vLLM imports
# `arctic_inference.suffix_decoding`, and PyPI has arctic-inference only as an sdist whose build wants CUDA-era
# pins (torch >= 2.10 in an isolated build env, grpc code generation, CUDA custom ops). The suffix tree itself is
# plain C++ (csrc/suffix_decoding, nanobind), so this builds just that extension and installs the
# `arctic_inference.suffix_decoding` package next to vLLM (no vLLM plugin, no CUDA ops; the package's other
# modules are left out). Usage: bash eval/setup_vllm_suffix.sh [VENV_DIR]  (default .venv-vllm; ~1 minute)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-vllm}"
VERSION="${ARCTIC_VERSION:-0.3.0}"
[ -x "$VENV/bin/python" ] || { echo "error: no vLLM venv at $VENV (run eval/setup_vllm.sh first)"; exit 2; }
"$VENV/bin/pip" install -q "nanobind==2.9.2" cmake ninja
T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
"$VENV/bin/pip" download -q --no-deps "arctic-inference==$VERSION" -d "$T"
tar xzf "$T"/arctic_inference-"$VERSION".tar.gz -C "$T"
SRC="$T/arctic_inference-$VERSION"
PATH="$VENV/bin:$PATH" cmake -S "$SRC/csrc/suffix_decoding" -B "$T/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DPython_EXECUTABLE="$VENV/bin/python" >/dev/null
PATH="$VENV/bin:$PATH" cmake --build "$T/build" >/dev/null
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
DEST="$SITE/arctic_inference"
mkdir -p "$DEST/suffix_decoding"
printf '"""arctic-inference %s: only suffix_decoding, built for CPU by specdec eval/setup_vllm_suffix.sh."""\n' \
  "$VERSION" > "$DEST/__init__.py"
cp "$SRC/LICENSE" "$DEST/LICENSE"
cp "$SRC"/arctic_inference/suffix_decoding/{__init__,cache}.py "$DEST/suffix_decoding/"
cp "$T"/build/_C*.so "$DEST/suffix_decoding/"
"$VENV/bin/python" -c "
from arctic_inference.suffix_decoding import SuffixDecodingCache
c = SuffixDecodingCache(max_tree_depth=8, max_cached_requests=4)
print('ok: arctic_inference.suffix_decoding', '$VERSION', 'in', '$DEST')"
