"""Hybrid setups A/B inside one process: each setup (a policy, its k and options, the hybrid's drafter options;
default hyb6 = confidence 0.6, k 8) run on every prompt in a rotating order, several rounds, so that a machine
whose memory bandwidth drifts (Zen 4: a 1-row pass of the 1.5B 23.6 and 35.9 ms minutes apart, and per-prompt
ratios of two identical setups 0.98 vs 1.21 in one bench run) weighs on all alike. Per setup: draft passes and
rows, alpha and tau, and the medians over prompts of draft time, verification time and the whole generation, each
as a ratio to the first setup's (per prompt, then the median). Where setups draft the same tokens (guess options
change only the rows a draft pass runs) the verification ratio is the check on the noise.
`[PROMPTS=file.jsonl] [BASE=json] python docs/results/bench/profile/hybrid_ab.py [N_PROMPTS] [ROUNDS] [SETUPS_JSON_LIST]`,
a setup e.g. {"drafter_options": {"guess": 0}} or {"policy": "cost", "k": 8, "policy_options": {}} over the base
setup (default hyb6; any SpecConfig, e.g. BASE='{"drafter": "aded"}'; {"drafter": "none"} is plain decoding)
(default: issue 23's piece 1 (18 prompts), 2 rounds, guess 4 / 2 / 0). CURVE='[[rows...], [ms...]]' pins the
target's pass costs (what sized trees and the guard read) to another machine's curve, e.g. a Sapphire Rapids day's,
to see the drafts that machine would verify (their tau, not its time)."""
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
HYB6 = {"drafter": "hybrid", "policy": "confidence", "k": 8, "policy_options": {"threshold": 0.6}, "drafter_options": {}}
BASE = json.loads(os.environ.get("BASE", "null")) or HYB6
specs = [SpecConfig(**{**BASE, **v}) for v in variants]
names = [json.dumps(v, separators=(",", ":")) for v in variants]
if os.environ.get("CURVE"):
    import specdec.runners.costs as costs_mod
    rows_ms = json.loads(os.environ["CURVE"])
    pinned = costs_mod.PassCosts(tuple(rows_ms[0]), tuple(ms / 1e3 for ms in rows_ms[1]))
    costs_mod.pass_costs = lambda *a, **kw: pinned
dec = load("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct", spec=specs[0])
count = collections.defaultdict(collections.Counter)
current = [None]  # the setup now running: setups with the same drafter options share one drafter and its runner
wrapped = set()
for name, spec in zip(names, specs):
    drafter = dec.drafter_for(spec)
    runner = drafter.runner if drafter is not None else None  # the draft model's runner (model-free: none)
    if runner is not None and id(runner) not in wrapped:
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
