"""Where the hybrid's draft time goes: each call of the draft runner's forward timed in place (by rows fed), the
draft's prefill, and the rest of `propose` (the greedy step, guesses, policy, Python) as the difference; GSM8K
prompts of issue 23's set, 128 new tokens, greedy, the bundled pair with the hybrid's defaults (hyb6).
`python docs/results/bench/profile/draft_time.py [N_PROMPTS] [SETUP_OPTIONS_JSON]` (about a minute a prompt)."""
import collections, json, sys, time
import torch
from specdec.api import load
from specdec.config import SpecConfig, StopConfig
from specdec.stats import GenerationStats

n = int(sys.argv[1]) if len(sys.argv) > 1 else 4
extra = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
rows = [json.loads(l) for l in open("docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl")]
prompts = [r["prompt"] for r in rows if r["category"] == "gsm8k"][:n]
spec = SpecConfig(drafter="hybrid", policy="confidence", k=8, policy_options={"threshold": 0.6},
                  drafter_options=extra)
dec = load("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct", spec=spec)
drafter = dec.drafter_for(spec)
model = drafter.model
T = collections.defaultdict(float); C = collections.Counter()
for name in ("forward", "prefill", "rollback", "commit"):
    f = getattr(model.runner, name)
    def w(*a, _f=f, _n=name, **kw):
        t = time.perf_counter(); r = _f(*a, **kw); dt = time.perf_counter() - t
        key = f"{_n}[{a[0].shape[1]}]" if _n == "forward" else _n
        T[key] += dt; C[key] += 1
        return r
    setattr(model.runner, name, w)
tf = dec.target.forward
def target_forward(x, *a, **kw):
    t = time.perf_counter(); r = tf(x, *a, **kw); T["target.forward"] += time.perf_counter() - t
    C["target.forward"] += 1; C["target.rows"] += x.shape[1]
    return r
dec.target.forward = target_forward
prop = model.propose
def propose(ctx):
    t = time.perf_counter(); d = prop(ctx); T["propose"] += time.perf_counter() - t; C["propose"] += 1
    return d
model.propose = propose
dec.generate("warm up", max_new_tokens=8)
T.clear(); C.clear()
tot = GenerationStats()
for p in prompts:
    st = GenerationStats()
    ids = dec.encode(p)
    dec.generate_ids(ids, stop=StopConfig(max_new_tokens=128), spec=spec, stats=st)
    tot.draft_s += st.draft_s; tot.verify_s += st.verify_s; tot.new_tokens += st.new_tokens
    tot.drafted += st.drafted; tot.accepted += st.accepted; tot.rounds += st.rounds
print(f"{len(prompts)} prompts: {tot.new_tokens} tokens, {tot.rounds} rounds, drafted {tot.drafted}, accepted "
      f"{tot.accepted}; draft {tot.draft_s:.2f} s, verify {tot.verify_s:.2f} s; model propose calls {C['propose']} "
      f"{T['propose']:.2f} s")
fw = sum(v for k, v in T.items() if k.startswith("forward["))
nf = sum(c for k, c in C.items() if k.startswith("forward["))
print(f"draft forward: {nf} calls {fw:.2f} s ({fw / max(nf, 1) * 1e3:.1f} ms a call); prefill {T['prefill']:.2f} s "
      f"({C['prefill']}); rollback {T['rollback'] * 1e3:.0f} ms, commit {T['commit'] * 1e3:.0f} ms; "
      f"propose's rest {T['propose'] - fw - T['prefill'] - T['rollback'] - T['commit']:.2f} s")
print(f"target forward: {C['target.forward']} calls, {C['target.rows'] / max(C['target.forward'], 1):.2f} rows a "
      f"call, {T['target.forward']:.2f} s ({T['target.forward'] / max(C['target.forward'], 1) * 1e3:.1f} ms a call); "
      f"verify's rest {tot.verify_s - T['target.forward']:.2f} s")
for k in sorted((k for k in T if k.startswith("forward[")), key=lambda k: int(k[8:-1])):
    print(f"  {k}: {C[k]} calls, {T[k] / C[k] * 1e3:.1f} ms a call, {T[k]:.2f} s")
