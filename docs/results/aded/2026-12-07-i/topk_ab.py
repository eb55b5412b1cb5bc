"""The loop's target top-k (ADED's recycling reads the target's 4 likeliest tokens of every verified row) through the
kernel library's fused `top_probs` against torch's topk + logsumexp, in one process: plain decoding and ADED with
either (ab_common.Runs); the medians over prompts of the whole generation's time as a ratio to plain's and to ADED
with torch's top-k, and the verification time's.
`[PROMPTS=file.jsonl] python docs/results/aded/2026-12-07-i/topk_ab.py [N] [ROUNDS]`"""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from ab_common import Runs, args, prompts  # noqa: E402
from specdec.api import load  # noqa: E402
from specdec.config import SpecConfig  # noqa: E402
from specdec.weights import kernels  # noqa: E402

n, rounds = args()
aded = SpecConfig(drafter="aded")
dec = load("qwen2.5-coder-1.5b-instruct", spec=aded)
ext = kernels.loaded()
assert ext is not None, "the torch runner on specdec's kernel is needed"


def use(e):
    return lambda: setattr(kernels, "loaded", lambda: e)


run = Runs(dec, {"plain": (SpecConfig(drafter="none"), use(ext)), "aded-fused-topk": (aded, use(ext)),
                 "aded-torch-topk": (aded, use(None))}, prompts(n), rounds)
print("setup | tau | whole vs plain | whole vs aded-torch-topk | verification vs aded-torch-topk")
for name in run.setups:
    print(f"{name} | {run.tau(name):.2f} | {run.ratio(name, 'plain'):.3f} | {run.ratio(name, 'aded-torch-topk'):.3f} | "
          f"{run.ratio(name, 'aded-torch-topk', verify=True):.3f}")
