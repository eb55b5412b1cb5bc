"""Where vLLM's speculative outputs part from its plain greedy output (batch 1 bench JSON): for each differing
prompt, the first differing position and the two tokens, decoded. With bf16 weights a pass over several tokens
rounds differently from a one-token pass, so a near-tied argmax can flip (this engine's exact mode exists for
that reason; vLLM has none).

    python docs/results/scale/divergence.py [docs/results/scale/batch1.json]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    from specdec.zoo.load import load_tokenizer

    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("batch1.json"))
    rep = json.loads(path.read_text())
    tok = load_tokenizer(rep["config"]["target"])
    base = rep["setups"]["vllm_plain"]["per_prompt"]
    cats = rep["config"].get("prompt_categories") or [""] * len(base)
    for name, s in rep["setups"].items():
        if not name.startswith("vllm_") or name == "vllm_plain" or s.get("failed"):
            continue
        for p, q, cat in zip(base, s["per_prompt"], cats):
            a, b = p["output_ids"], q["output_ids"]
            if a == b:
                continue
            i = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            ctx = tok.decode(a[max(0, i - 8):i])
            print(f"{name} prompt {p['prompt_index']} ({cat}): token {i}: after {ctx!r}: plain {tok.decode(a[i:i + 1])!r}"
                  f" vs {tok.decode(b[i:i + 1])!r}")


if __name__ == "__main__":
    main()
