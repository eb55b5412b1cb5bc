"""Short end-to-end check: plain vs prompt-lookup vs aded on 3 GSM8K test prompts, 64 tokens, 1 thread, bf16.

    python docs/results/aded/e2e_check.py STORE > out.log     (STORE: a `specdec aded build` file)
Greedy outputs are compared with plain decoding; mismatches are listed (first differing index)."""
import json, sys, time, torch
torch.set_num_threads(1)
from specdec.api import SpecDecoder
from specdec.config import SpecConfig, StopConfig
from specdec.stats import GenerationStats
from specdec.zoo import load_causal_lm
store = sys.argv[1]
hf, tok = load_causal_lm("qwen2.5-coder-1.5b-instruct")
dec = SpecDecoder(hf, tok)
qs = [json.loads(x)["question"] for x in open("/work/shared/data/gsm8k/test.jsonl")][3:6]  # not the replay prompts
specs = {"plain": SpecConfig(),
         "prompt-lookup k4": SpecConfig(drafter="prompt-lookup", k=4),
         "aded 5:4": SpecConfig(drafter="aded", k=5, drafter_options={"store": store, "nodes": 5, "depth": 4}),
         "aded 5:4 empty store": SpecConfig(drafter="aded", k=5, drafter_options={"nodes": 5, "depth": 4}),
         }
dec.generate("warm up", max_new_tokens=4)
res = {k: [] for k in specs}
outs = {}
mism = []
for q in qs:
    ids = dec.encode(q)
    for name, spec in specs.items():
        st = GenerationStats()
        out = [t for r in dec.stream_ids(ids, stop=StopConfig(max_new_tokens=64), spec=spec, stats=st) for t in r.tokens]
        outs.setdefault(q, {})[name] = out
        res[name].append(st)
    for name, o in outs[q].items():
        if o != outs[q]["plain"]:
            i = next((i for i, (a, b) in enumerate(zip(o, outs[q]["plain"])) if a != b), None)
            mism.append((name, i))
summary = {}
for name, sts in res.items():
    new = sum(s.new_tokens for s in sts); dt = sum(s.decode_s for s in sts); rounds = sum(s.rounds for s in sts)
    d = sum(s.draft_s for s in sts); v = sum(s.verify_s for s in sts)
    summary[name] = {"tokens": new, "seconds": round(dt, 2), "tok_s": round(new / dt, 3), "tau": round(new / rounds, 2),
                     "draft_share": round(d / (d + v), 4)}
base = summary["plain"]["tok_s"]
for name, s in summary.items():
    s["speedup"] = round(s["tok_s"] / base, 2)
    print(name, s)
print("greedy mismatches (name, first index):", mism)
print(json.dumps({"summary": summary, "mismatches": mism}))
