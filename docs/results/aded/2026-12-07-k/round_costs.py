"""In-loop split of an ADED round's verification time by the rows of its pass (the target's forward alone, and the round's
verification: forward, verify(), the target's top-k, commit), against the cost curve the sizer and the guard read
(Guard.verify). Piece 1 prompts by index (default all). `python docs/results/aded/2026-12-07-k/round_costs.py [INDEX...]`"""
import json, sys, time, collections, statistics
import specdec.engine.loop as loop_mod
from specdec.engine.guard import Guard
from specdec.api import load
from specdec.config import SpecConfig, StopConfig
from specdec.stats import GenerationStats
LOG = []
FW = []
class Spy(Guard):
    def observe(self, drafted, committed, seconds, rows=0, verify_seconds=None):
        LOG.append((rows, verify_seconds, FW[-1] if FW else 0, self.verify(rows)))
        super().observe(drafted, committed, seconds, rows, verify_seconds)
loop_mod.Guard = Spy
rows = [json.loads(l) for l in open("docs/results/aded/2026-12-05-d/prompts/piece-1.jsonl")]
pick = [int(x) for x in sys.argv[1:]] or list(range(len(rows)))
spec = SpecConfig(drafter="aded")
dec = load("qwen2.5-coder-1.5b-instruct", spec=spec)
R = dec.target
fw = R.forward
def timed(*a, **k):
    t0 = time.perf_counter(); out = fw(*a, **k); FW.append(time.perf_counter() - t0); return out
R.forward = timed
dec.generate("warm up", max_new_tokens=8, spec=spec)
LOG.clear()
for i in pick:
    ids = dec.encode(rows[i]["prompt"])
    dec.generate_ids(ids, stop=StopConfig(max_new_tokens=128), spec=spec, stats=GenerationStats())
by = collections.defaultdict(list)
for rws, v, f, c in LOG:
    by[rws].append((v, f, c))
for k in sorted(by):
    v = by[k]
    print(k, len(v), f"round verify median {statistics.median(x[0] for x in v)*1e3:.1f} forward {statistics.median(x[1] for x in v)*1e3:.1f} curve {v[0][2]*1e3:.1f}")
