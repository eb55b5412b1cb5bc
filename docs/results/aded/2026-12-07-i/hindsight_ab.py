"""ADED's tree sizer learning from every drafted node, labelled by the text the target commits (this commit's
TreeSizer.LEARN = "all"), against learning from the verified nodes only (LEARN = "kept", the rule before), in one
process: plain decoding, ADED as it is now and ADED whose sizer learns from the kept nodes, each prompt through every
setup in a rotating order, several rounds. Per setup: tau, the rounds by kept nodes with the accepted tokens a round
and the sizer's predicted ones, the kept nodes by depth (count, accepted, predicted), and the medians over prompts of
the whole generation's time as a ratio to plain's and to the baseline's.
`[PROMPTS=file.jsonl] [CURVE='[[rows], [ms]]'] python docs/results/aded/2026-12-07-i/hindsight_ab.py [N] [ROUNDS]`"""
import collections, json, os, statistics, sys, time
from specdec.api import load
from specdec.budget import _depths
from specdec.config import SpecConfig, StopConfig
from specdec.stats import GenerationStats

n = int(sys.argv[1]) if len(sys.argv) > 1 else 18
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
PROMPTS = os.environ.get("PROMPTS", "docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl")
rows = [json.loads(line) for line in open(PROMPTS)][:n]
if os.environ.get("CURVE"):
    import specdec.runners.costs as costs_mod
    rows_ms = json.loads(os.environ["CURVE"])
    pinned = costs_mod.PassCosts(tuple(rows_ms[0]), tuple(ms / 1e3 for ms in rows_ms[1]))
    costs_mod.pass_costs = lambda *a, **kw: pinned


specs = {"plain": SpecConfig(drafter="none"), "aded": SpecConfig(drafter="aded"),
         "aded-kept": SpecConfig(drafter="aded", drafter_options={"recycle": 4})}  # the default, own drafter
dec = load("qwen2.5-coder-1.5b-instruct", spec=specs["plain"])
drafters = {name: dec.drafter_for(s) for name, s in specs.items()}
drafters["aded-kept"].sizer.LEARN = "kept"
R = collections.defaultdict(collections.Counter)  # setup -> counters
for name, d in drafters.items():
    if d is None:
        continue
    def wrap(name=name, d=d):
        cut, observe = d.sizer.cut, d.observe
        last = {}
        def cut2(parents, scores, tokens, spent=0.0, kinds=None):
            kept = cut(parents, scores, tokens, spent, kinds)
            ch = d.sizer.chances(parents, scores, kinds)
            dep = _depths(parents)
            last.update(n=len(kept), pred=sum(ch[j] for j in kept), kind=(kinds[0] if kinds and kept else ""),
                        nodes=[(min(dep[j], 3), ch[j], (kinds[j] or "store") if kinds else "store") for j in kept])
            return kept
        def observe2(result):
            if last:
                k = min(last["n"], 4)
                R[name].update({f"n{k}": 1, f"a{k}": result.num_accepted, f"p{k}": last["pred"]})
                if last["kind"]:
                    R[name].update({f"{last['kind']} rounds": 1, f"{last['kind']} accepted": result.num_accepted})
                ok = set(result.accepted_nodes or ())
                for j, (dep, ch, kind) in enumerate(last["nodes"]):
                    src = "store" if kind == "store" else "suffix"
                    R[name].update({f"depth {dep} {src} predicted": ch, f"depth {dep} {src} accepted": j in ok,
                                    f"depth {dep} {src} nodes": 1})
                last.clear()
            observe(result)
        d.sizer.cut, d.observe = cut2, observe2
    wrap()
for name, s in specs.items():
    dec.generate("warm up", max_new_tokens=8, spec=s)
R.clear()
T = collections.defaultdict(lambda: collections.defaultdict(list))
acc = collections.defaultdict(collections.Counter)
out = collections.defaultdict(dict)
pairs = list(specs.items())
t0 = time.time()
for r in range(rounds):
    for i, row in enumerate(rows):
        ids = dec.encode(row["prompt"])
        k = (i + r) % len(pairs)
        for name, spec in pairs[k:] + pairs[:k]:
            st = GenerationStats()
            t = time.perf_counter()
            toks = dec.generate_ids(ids, stop=StopConfig(max_new_tokens=128), spec=spec, stats=st)
            T[name][i].append(time.perf_counter() - t)
            acc[name].update(rounds=st.rounds, tokens=st.new_tokens)
            out[i][name] = toks
same = sum(len({str(v) for v in o.values()}) == 1 for o in out.values())
print(f"{len(rows)} prompts x {rounds} rounds, 128 new tokens, greedy, {time.time() - t0:.0f} s; outputs the same in "
      f"every setup: {same}/{len(rows)}")
tot = lambda nm: [sum(T[nm][i]) for i in range(len(rows))]  # noqa: E731
print("setup | tau | whole vs plain | whole vs kept-only learning | rounds by kept nodes 1 / 2 / 3 / 4+: count, "
      "accepted a round, predicted")
for name in specs:
    a, c = acc[name], R[name]
    by = " / ".join(f"{c[f'n{k}']}: {c[f'a{k}'] / max(c[f'n{k}'], 1):.2f}, {c[f'p{k}'] / max(c[f'n{k}'], 1):.2f}"
                    for k in (1, 2, 3, 4)) if name != "plain" else "-"
    vs = lambda ref: statistics.median(x / y for x, y in zip(tot(name), tot(ref)))  # noqa: E731
    print(f"{name} | {a['tokens'] / a['rounds']:.2f} | {vs('plain'):.3f} | {vs('aded-kept'):.3f} | {by}")
kinds = sorted({k.split(' ')[0] for k in R["aded"] if k.startswith("suffix")})
print("aded's suffix rounds (first node's kind): " + ", ".join(
    f"{k} {R['aded'][k + ' rounds']} rounds, {R['aded'][k + ' accepted'] / R['aded'][k + ' rounds']:.2f} accepted"
    for k in kinds))
for name in ("aded", "aded-kept"):
    c = R[name]
    print(name + ", kept nodes by depth and source: nodes, accepted, sum of predicted chances: " + "; ".join(
        f"depth {d} {src} {int(c[f'depth {d} {src} nodes'])}, {int(c[f'depth {d} {src} accepted'])}, "
        f"{c[f'depth {d} {src} predicted']:.1f}" for d in range(4) for src in ("store", "suffix")
        if c[f"depth {d} {src} nodes"]))
