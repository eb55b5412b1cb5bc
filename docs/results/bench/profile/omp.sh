cd "$(dirname "$0")/../../../.."; . .venv/bin/activate; export HF_HUB_OFFLINE=1
run(){ timeout 300 env "$@" python docs/results/bench/profile/step.py qwen2.5-coder-1.5b-instruct 512 2>&1 | grep "ms/step"; }
echo default; run X=1
echo bind; run OMP_PROC_BIND=close OMP_PLACES=cores
echo tcmalloc; run LD_PRELOAD=.venv-vllm/tcmalloc/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
echo default-again; run X=1
