"""The per-256 super-block path (SPECDEC_SUPERBLOCKS) against the default per-32 path, in one process: plain decoding
and hyb6 (the hybrid, confidence 0.6, k 8) with the kernel's switch flipped between generations, every prompt in a
rotating order over the four (path, setup) pairs, several rounds, so that the host's drift weighs on all alike.
Per pair: the medians over prompts of the whole generation, its prefill, draft and verification time, each as a
ratio to the same setup on the per-32 path; and, per path, whether hyb6's output equals plain's (greedy identity:
each path has its own numbers, so outputs are compared within a path, and across paths only counted).
`[PROMPTS=file.jsonl] python docs/results/bench/profile/superblocks_ab.py [N_PROMPTS] [ROUNDS]`
(default: issue 23's piece 1, 18 prompts, 2 rounds)."""
import collections, json, os, statistics, sys, time
from specdec.api import load
from specdec.config import SpecConfig, StopConfig
from specdec.stats import GenerationStats
from specdec.weights import kernels

n = int(sys.argv[1]) if len(sys.argv) > 1 else 18
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
PROMPTS = os.environ.get("PROMPTS", "docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl")
rows = [json.loads(l) for l in open(PROMPTS)][:n]
HYB6 = SpecConfig(drafter="hybrid", policy="confidence", k=8, policy_options={"threshold": 0.6})
PLAIN = SpecConfig(drafter=None)
dec = load("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct", spec=HYB6)
ext = kernels.load()
pairs = [(sb, name, spec) for sb in (False, True) for name, spec in (("plain", PLAIN), ("hyb6", HYB6))]
for sb, _, spec in pairs:  # warm-up
    ext.set_superblocks(sb)
    dec.generate("warm up", max_new_tokens=8, spec=spec)
T = collections.defaultdict(lambda: collections.defaultdict(list))  # (sb, name) -> prompt -> [(wall, prefill, draft, verify)]
out = collections.defaultdict(dict)
acc = collections.defaultdict(collections.Counter)
for r in range(rounds):
    for i, row in enumerate(rows):
        ids = dec.encode(row["prompt"])
        k = (i + r) % len(pairs)
        for sb, name, spec in pairs[k:] + pairs[:k]:
            ext.set_superblocks(sb)
            st = GenerationStats()
            t = time.perf_counter()
            toks = dec.generate_ids(ids, stop=StopConfig(max_new_tokens=128), spec=spec, stats=st)
            T[(sb, name)][i].append((time.perf_counter() - t, st.prefill_s, st.draft_s, st.verify_s))
            acc[(sb, name)].update(drafted=st.drafted, accepted=st.accepted, rounds=st.rounds, tokens=st.new_tokens)
            out[(sb, i)].setdefault(name, set()).add(tuple(toks))
ext.set_superblocks(kernels.superblocks())
print(f"{len(rows)} prompts x {rounds} rounds, 128 new tokens, greedy ({os.path.basename(PROMPTS)})")
for sb in (False, True):
    same = sum(len(out[(sb, i)]["plain"] | out[(sb, i)]["hyb6"]) == 1 for i in range(len(rows)))
    print(f"{'per-256' if sb else 'per-32'} path: hyb6's output = plain's on {same}/{len(rows)} prompts (every round)")
diff = sum(out[(False, i)]["plain"] != out[(True, i)]["plain"] for i in range(len(rows)))
print(f"plain outputs that differ between the two paths (their own numbers): {diff}/{len(rows)}")
print("path | setup | tau | whole vs per-32 | prefill vs per-32 | draft vs per-32 | verify vs per-32 | median s")
for sb, name, _ in pairs:
    s = lambda j, key: [sum(x[j] for x in T[key][i]) for i in range(len(rows))]  # noqa: E731
    ratio = lambda j: statistics.median(a / b for a, b in zip(s(j, (sb, name)), s(j, (False, name))) if b > 0)  # noqa: E731
    a = acc[(sb, name)]
    draft = f"{ratio(2):.3f}" if name != "plain" else "-"
    print(f"{'per-256' if sb else 'per-32'} | {name} | {a['tokens'] / max(a['rounds'], 1):.2f} | {ratio(0):.3f} | "
          f"{ratio(1):.3f} | {draft} | {ratio(3):.3f} | {statistics.median(s(0, (sb, name))) / rounds:.2f}")
