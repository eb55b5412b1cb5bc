"""Hybrid setups A/B inside one process: each setup (a policy, its k and options, the hybrid's drafter options;
default hyb6 = confidence 0.6, k 8) run on every prompt in a rotating order, several rounds, so that a machine
whose memory bandwidth drifts (Zen 4: a 1-row pass of the 1.5B 23.6 and 35.9 ms minutes apart, and per-prompt
ratios of two identical setups 0.98 vs 1.21 in one bench run) weighs on all alike. Per setup: draft passes and
rows, alpha and tau, and the medians over prompts of draft time, verification time and the whole generation, each
as a ratio to the first setup's (per prompt, then the median). Where setups draft the same tokens (guess options
change only the rows a draft pass runs) the verification ratio is the check on the noise.
`[PROMPTS=file.jsonl] python docs/results/bench/profile/hybrid_ab.py [N_PROMPTS] [ROUNDS] [SETUPS_JSON_LIST]`, a
setup e.g. {"drafter_options": {"guess": 0}} or {"policy": "cost", "k": 8, "policy_options": {}}
(default: issue 23's piece 1 (18 prompts), 2 rounds, guess 4 / 2 / 0)."""
import collections, json, os, statistics, sys, time
from specdec.api import load
from specdec.config import SpecConfig, StopConfig
from specdec.stats import GenerationStats

n = int(sys.argv[1]) if len(sys.argv) > 1 else 18
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
variants = json.loads(sys.argv[3]) if len(sys.argv) > 3 else [
    {"drafter_options": {"guess": 4}}, {"drafter_options": {"guess": 2}}, {"drafter_options": {"guess": 0}}]
PROMPTS = os.environ.get("PROMPTS", "docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl")
rows = [json.loads(l) for l in open(PROMPTS)][:n]
HYB6 = {"policy": "confidence", "k": 8, "policy_options": {"threshold": 0.6}, "drafter_options": {}}
specs = [SpecConfig(drafter="hybrid", **{**HYB6, **v}) for v in variants]
names = [json.dumps(v, separators=(",", ":")) for v in variants]
dec = load("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct", spec=specs[0])
count = collections.defaultdict(collections.Counter)
current = [None]  # the setup now running: setups with the same drafter options share one drafter and its runner
wrapped = set()
for name, spec in zip(names, specs):
    runner = dec.drafter_for(spec).model.runner
    if id(runner) not in wrapped:
        wrapped.add(id(runner))
        def fwd(x, *a, _f=runner.forward, **kw):
            count[current[0]]["passes"] += 1; count[current[0]]["rows"] += x.shape[1]
            return _f(x, *a, **kw)
        runner.forward = fwd
    current[0] = name
    dec.generate("warm up", max_new_tokens=8, spec=spec)
count.clear()
T = collections.defaultdict(lambda: collections.defaultdict(list))  # name -> prompt -> [(wall, draft, verify)]
acc = collections.defaultdict(collections.Counter)
out = {}
pairs = list(zip(names, specs))
for r in range(rounds):
    for i, row in enumerate(rows):
        ids = dec.encode(row["prompt"])
        k = (i + r) % len(pairs)
        for name, spec in pairs[k:] + pairs[:k]:  # rotating order
            st = GenerationStats()
            current[0] = name
            t = time.perf_counter()
            toks = dec.generate_ids(ids, stop=StopConfig(max_new_tokens=128), spec=spec, stats=st)
            T[name][i].append((time.perf_counter() - t, st.draft_s, st.verify_s))
            acc[name].update(drafted=st.drafted, accepted=st.accepted, rounds=st.rounds, tokens=st.new_tokens)
            out.setdefault(i, {})[name] = toks
same = sum(len({str(v) for v in o.values()}) == 1 for o in out.values())
print(f"{len(rows)} prompts x {rounds} rounds, 128 new tokens, greedy; outputs the same in every setup: "
      f"{same}/{len(rows)}")
print("setup | draft passes | draft rows | alpha | tau | draft s (sum) | draft time vs first | verify time vs first "
      "| whole vs first")
for name in names:
    s = lambda j, nm: [sum(x[j] for x in T[nm][i]) for i in range(len(rows))]  # noqa: E731
    ratio = lambda j: statistics.median(a / b for a, b in zip(s(j, name), s(j, names[0])))  # noqa: E731
    a = acc[name]
    print(f"{name} | {count[name]['passes'] // rounds} | {count[name]['rows'] // rounds} | "
          f"{a['accepted'] / max(a['drafted'], 1):.2f} | {a['tokens'] / max(a['rounds'], 1):.2f} | "
          f"{sum(s(1, name)) / rounds:.2f} | {ratio(1):.3f} | {ratio(2):.3f} | {ratio(0):.3f}")
