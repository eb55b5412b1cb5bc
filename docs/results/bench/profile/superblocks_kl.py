"""What the per-256 super-block path costs in accuracy: the bundled 1.5B's int4 runner on the default per-32 path and
on the super-block path against the same model in bf16 (the GGUF's weights dequantized: the reference the int4
kernels approximate), teacher-forced over each prompt and its plain greedy answer (128 tokens, 8-token verify passes
after the prompt's prefill). Per path: mean KL(bf16 || int4) over the answer's positions, and how often the argmax
agrees with bf16's. `[PROMPTS=file.jsonl] python docs/results/bench/profile/superblocks_kl.py [N_PROMPTS]`."""
import json, os, sys
import torch
from specdec.api import load, load_runner_for
from specdec.config import EngineConfig, StopConfig
from specdec.weights import kernels

n = int(sys.argv[1]) if len(sys.argv) > 1 else 18
PROMPTS = os.environ.get("PROMPTS", "docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl")
rows = [json.loads(l) for l in open(PROMPTS)][:n]
NAME = "qwen2.5-coder-1.5b-instruct"
dec = load(NAME, drafter="none")
ref, _ = load_runner_for(NAME, EngineConfig(weights="bf16"), max_context=dec.target.max_context)
ext = kernels.load()


def logits(runner, prompt, answer, step=8):  # (n, V) the logits predicting answer[1:] ... from verify passes
    runner.reset()
    runner.prefill(prompt)
    out = []
    for s in range(0, answer.shape[1] - 1, step):
        chunk = answer[:, s:s + step]
        lg, _ = runner.forward(chunk)
        out.append(lg[0].float())
        runner.commit(chunk.shape[1])
    return torch.cat(out)[: answer.shape[1] - 1]


tot = {False: [0.0, 0, 0], True: [0.0, 0, 0]}  # kl sum, argmax agreements, positions
for i, row in enumerate(rows):
    ids = dec.encode(row["prompt"])
    ext.set_superblocks(False)
    answer = torch.tensor([dec.generate_ids(ids, stop=StopConfig(max_new_tokens=128, ignore_eos=True))])
    p = torch.log_softmax(logits(ref, ids, answer), -1)
    for sb in (False, True):
        ext.set_superblocks(sb)
        q = torch.log_softmax(logits(dec.target, ids, answer), -1)
        kl = (p.exp() * (p - q)).sum(-1)
        tot[sb][0] += float(kl.sum()); tot[sb][1] += int((p.argmax(-1) == q.argmax(-1)).sum()); tot[sb][2] += len(kl)
    print(f"prompt {i}: per-32 KL {tot[False][0] / tot[False][2]:.5f} (running)  per-256 {tot[True][0] / tot[True][2]:.5f}",
          flush=True)
ext.set_superblocks(kernels.superblocks())
for sb in (False, True):
    kl, agree, npos = tot[sb]
    print(f"{'per-256' if sb else 'per-32'} path: mean KL(bf16 || int4) {kl / npos:.5f} nats over {npos} positions, "
          f"argmax = bf16's {agree / npos:.4f}")
