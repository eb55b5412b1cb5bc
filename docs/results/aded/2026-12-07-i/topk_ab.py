"""The loop's target top-k (ADED's recycling reads the target's 4 likeliest tokens of every verified row) through the
kernel library's fused `top_probs` against torch's topk + logsumexp, in one process: plain decoding and ADED with
either, each prompt through every setup in a rotating order, several rounds; the medians over prompts of the whole
generation's time as a ratio to plain's and to ADED with torch's top-k, and the verification time's.
`[PROMPTS=file.jsonl] python docs/results/aded/2026-12-07-i/topk_ab.py [N] [ROUNDS]`"""
import collections, json, os, statistics, sys, time
from specdec.api import load
from specdec.config import SpecConfig, StopConfig
from specdec.stats import GenerationStats
from specdec.weights import kernels

n = int(sys.argv[1]) if len(sys.argv) > 1 else 18
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
PROMPTS = os.environ.get("PROMPTS", "docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl")
rows = [json.loads(line) for line in open(PROMPTS)][:n]
aded = SpecConfig(drafter="aded")
dec = load("qwen2.5-coder-1.5b-instruct", spec=aded)
ext = kernels.loaded()
assert ext is not None, "the torch runner on specdec's kernel is needed"
setups = {"plain": (SpecConfig(drafter="none"), ext), "aded-fused-topk": (aded, ext), "aded-torch-topk": (aded, None)}
for spec, _ in setups.values():
    dec.generate("warm up", max_new_tokens=8, spec=spec)
T = collections.defaultdict(lambda: collections.defaultdict(list))
V = collections.defaultdict(lambda: collections.defaultdict(list))
acc = collections.defaultdict(collections.Counter)
out = collections.defaultdict(dict)
pairs = list(setups.items())
t0 = time.time()
for r in range(rounds):
    for i, row in enumerate(rows):
        ids = dec.encode(row["prompt"])
        k = (i + r) % len(pairs)
        for name, (spec, e) in pairs[k:] + pairs[:k]:
            kernels.loaded = lambda e=e: e
            st = GenerationStats()
            t = time.perf_counter()
            toks = dec.generate_ids(ids, stop=StopConfig(max_new_tokens=128), spec=spec, stats=st)
            T[name][i].append(time.perf_counter() - t)
            V[name][i].append(st.verify_s)
            acc[name].update(rounds=st.rounds, tokens=st.new_tokens)
            out[i][name] = toks
same = sum(len({str(v) for v in o.values()}) == 1 for o in out.values())
print(f"{len(rows)} prompts x {rounds} rounds, 128 new tokens, greedy, {time.time() - t0:.0f} s; outputs the same in "
      f"every setup: {same}/{len(rows)}")
print("setup | tau | whole vs plain | whole vs aded-torch-topk | verification vs aded-torch-topk")
tot = lambda D, nm: [sum(D[nm][i]) for i in range(len(rows))]  # noqa: E731
for name in setups:
    vs = lambda D, ref: statistics.median(x / y for x, y in zip(tot(D, name), tot(D, ref)))  # noqa: E731
    print(f"{name} | {acc[name]['tokens'] / acc[name]['rounds']:.2f} | {vs(T, 'plain'):.3f} | "
          f"{vs(T, 'aded-torch-topk'):.3f} | {vs(V, 'aded-torch-topk'):.3f}")
