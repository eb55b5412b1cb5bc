"""Where an ADED round's time goes beside plain decoding's, per round: drafting, verification, and the rest of the
loop (the drafter's observe among it), one process, 2 rounds, the prompts of piece 1 given by index (default 0 4 5 8:
writing, stem, humanities, rag). `python docs/results/aded/2026-12-07-i/split.py [INDEX...]`"""
import json, sys, time, collections
from specdec.api import load
from specdec.config import SpecConfig, StopConfig
from specdec.stats import GenerationStats
rows = [json.loads(l) for l in open("docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl")]
pick = [int(x) for x in sys.argv[1:]] or [0, 4, 5, 8]
specs = {"plain": SpecConfig(drafter="none"), "aded": SpecConfig(drafter="aded")}
dec = load("qwen2.5-coder-1.5b-instruct", spec=specs["aded"])
for s in specs.values(): dec.generate("warm up", max_new_tokens=8, spec=s)
agg = collections.defaultdict(collections.Counter)
for r in range(2):
    for i in pick:
        ids = dec.encode(rows[i]["prompt"])
        for name, spec in (list(specs.items()) if r == 0 else list(specs.items())[::-1]):
            st = GenerationStats(); t = time.perf_counter()
            dec.generate_ids(ids, stop=StopConfig(max_new_tokens=128), spec=spec, stats=st)
            tot = time.perf_counter() - t
            agg[name].update(total=tot, draft=st.draft_s, verify=st.verify_s, prefill=st.prefill_s, rounds=st.rounds, tokens=st.new_tokens)
for name, a in agg.items():
    n = a["rounds"]
    other = a["total"] - a["draft"] - a["verify"] - a["prefill"]
    print(f"{name}: tau {a['tokens']/n:.2f}, per round ms: draft {a['draft']/n*1e3:.2f} verify {a['verify']/n*1e3:.2f} other {other/n*1e3:.2f}; total {a['total']:.1f} s, prefill {a['prefill']:.1f} s")
