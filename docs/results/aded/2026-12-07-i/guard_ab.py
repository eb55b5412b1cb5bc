"""The guard judging every round where the drafter was asked (empty drafts too: `consulted`, tried at 8ef72b5 and
not kept; this script needs that commit) against the guard judging only rounds with a draft (the observe's time
charged in both rows), in one process: plain decoding, ADED under each, each
prompt through every setup in a rotating order, several rounds. Prints the medians over prompts of the whole
generation's time as a ratio to plain's and to the baseline's, then every prompt's speed over plain (its category).
`[PROMPTS=file.jsonl] python docs/results/aded/2026-12-07-i/guard_ab.py [N] [ROUNDS]`"""
import collections, json, os, statistics, sys, time
import specdec.engine.loop as loop_mod
from specdec.api import load
from specdec.config import SpecConfig, StopConfig
from specdec.engine.guard import Guard
from specdec.stats import GenerationStats

n = int(sys.argv[1]) if len(sys.argv) > 1 else 18
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
PROMPTS = os.environ.get("PROMPTS", "docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl")
rows = [json.loads(line) for line in open(PROMPTS)][:n]


class DraftedOnly(Guard):
    """The rule before: only rounds with a draft are judged."""

    def observe(self, drafted, committed, seconds, rows=0, verify_seconds=None, consulted=None):
        super().observe(drafted, committed, seconds, rows, verify_seconds, None)


aded = SpecConfig(drafter="aded")
setups = {"plain": (SpecConfig(drafter="none"), Guard), "aded": (aded, Guard),
          "aded-drafted-rounds-only": (SpecConfig(drafter="aded", drafter_options={"recycle": 4}), DraftedOnly)}
dec = load("qwen2.5-coder-1.5b-instruct", spec=aded)
for spec, g in setups.values():
    loop_mod.Guard = g
    dec.generate("warm up", max_new_tokens=8, spec=spec)
T = collections.defaultdict(lambda: collections.defaultdict(list))
acc = collections.defaultdict(collections.Counter)
out = collections.defaultdict(dict)
pairs = list(setups.items())
t0 = time.time()
for r in range(rounds):
    for i, row in enumerate(rows):
        ids = dec.encode(row["prompt"])
        k = (i + r) % len(pairs)
        for name, (spec, g) in pairs[k:] + pairs[:k]:
            loop_mod.Guard = g
            st = GenerationStats()
            t = time.perf_counter()
            toks = dec.generate_ids(ids, stop=StopConfig(max_new_tokens=128), spec=spec, stats=st)
            T[name][i].append(time.perf_counter() - t)
            acc[name].update(rounds=st.rounds, tokens=st.new_tokens, offs=st.extra.get("guard_switched_off", 0))
            out[i][name] = toks
same = sum(len({str(v) for v in o.values()}) == 1 for o in out.values())
print(f"{len(rows)} prompts x {rounds} rounds, 128 new tokens, greedy, {time.time() - t0:.0f} s; outputs the same in "
      f"every setup: {same}/{len(rows)}")
tot = lambda nm: [sum(T[nm][i]) for i in range(len(rows))]  # noqa: E731
base = "aded-drafted-rounds-only"
print(f"setup | tau | guard switched off | whole vs plain | whole vs {base}")
for name in setups:
    vs = lambda ref: statistics.median(x / y for x, y in zip(tot(name), tot(ref)))  # noqa: E731
    print(f"{name} | {acc[name]['tokens'] / acc[name]['rounds']:.2f} | {acc[name]['offs']} | {vs('plain'):.3f} | "
          f"{vs(base):.3f}")
print("per prompt, speed over plain (aded / " + base + "):")
for i, row in enumerate(rows):
    p = sum(T["plain"][i])
    print(f"  {i} {row.get('category', '?')}: {p / sum(T['aded'][i]):.3f} / {p / sum(T[base][i]):.3f}")
