"""GPU probe for sessions lent a GPU (docs/results/scale/gpu_check.sh): the torch runner on CUDA with a model of
the bundled 1.5B's shape (random weights: the weights do not travel; costs depend on shapes only), bf16.
Writes the pass cost by row count (1..64 rows after a 512-token context) and plain decoding's ms a token.

    python3 docs/results/scale/gpu_probe.py --json OUT.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from specdec.runners.torch_runner import TorchRunner

QWEN15 = dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
              num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768, tie_word_embeddings=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", required=True)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**QWEN15)).to(torch.bfloat16).to(args.device).eval()
    runner = TorchRunner(model, max_context=1024)
    ctx = torch.randint(0, 151936, (1, 512))
    out = {"device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
           "torch": torch.__version__, "model": "Qwen2.5-1.5B shape, random bf16 weights", "context": 512,
           "pass_ms": {}}
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    runner.reset()
    runner.prefill(ctx)
    for rows in (1, 2, 4, 8, 16, 32, 64):
        ids = torch.randint(0, 151936, (1, rows))
        times = []
        for _ in range(12):
            sync()
            t0 = time.perf_counter()
            runner.forward(ids)
            sync()
            times.append(time.perf_counter() - t0)
        out["pass_ms"][rows] = round(statistics.median(times[2:]) * 1e3, 3)
        print(f"{rows:3d} rows: {out['pass_ms'][rows]:.2f} ms", flush=True)
    runner.reset()
    runner.prefill(ctx)
    tok = torch.tensor([[5]])
    sync()
    t0 = time.perf_counter()
    for _ in range(64):
        logits, _ = runner.forward(tok)
        runner.commit(1)
        tok = logits[:, -1:].argmax(-1).cpu()
    sync()
    out["plain_ms_per_token"] = round((time.perf_counter() - t0) / 64 * 1e3, 3)
    print(f"plain decoding: {out['plain_ms_per_token']:.2f} ms a token", flush=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
