"""ADED as the hybrid's first source (`--drafter hybrid --drafter-opt first=aded,first_min=E`), in one process:
plain decoding, the hybrid (confidence policy, K 8, threshold 0.6: the tuned setup of docs/runners.md) and the same
hybrid asking ADED first with each threshold E in $MINS (expected accepted tokens of ADED's sized tree), interleaved
prompt by prompt in a rotating order (ab_common.Runs). Per setup tau, the medians over prompts of the whole
generation's time as a ratio to plain's and to the hybrid's, and for the first=aded rows how many rounds took ADED's
tree, what they expected and what they accepted (all rounds of the timed generations).
`[MINS="1.5 2.5"] [PROMPTS=file.jsonl] python docs/results/aded/2026-12-08-l/first_ab.py [N] [ROUNDS]`"""
import collections, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from ab_common import Runs, args, prompts  # noqa: E402
from specdec.api import load  # noqa: E402
from specdec.config import SpecConfig  # noqa: E402

n, rounds = args()
mins = [float(x) for x in os.environ.get("MINS", "1.5 2.5").split()]
hyb = dict(drafter="hybrid", policy="confidence", k=8, policy_options={"threshold": 0.6})
specs = {"plain": SpecConfig(drafter="none"), "hyb": SpecConfig(**hyb)}
for m in mins:
    specs[f"hyb-first{m:g}"] = SpecConfig(**hyb, drafter_options={"first": "aded", "first_min": m})
dec = load("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct", spec=specs["plain"])
R = collections.defaultdict(collections.Counter)  # setup -> ADED-first counters


def spy(name: str) -> None:
    """Count ADED's rounds of each generation (asked / taken, expected and accepted of the taken) before start()
    clears them."""
    aded = dec.drafter_for(specs[name]).first
    start = aded.start

    def start2(prompt_ids):
        for r in aded.rounds:
            R[name]["asked"] += 1
            if not r.get("withdrawn"):
                R[name].update(taken=1, expected=r["expected"], accepted=r.get("accepted", 0))
        start(prompt_ids)

    aded.start = start2


class Spied(Runs):
    def after_warmup(self) -> None:
        for name in specs:
            if name.startswith("hyb-first"):
                spy(name)


rows = prompts(n)
run = Spied(dec, {name: (s, None) for name, s in specs.items()}, rows, rounds)
for name in specs:  # the last generation's rounds
    if name.startswith("hyb-first"):
        dec.drafter_for(specs[name]).first.start(dec.encode("x"))
print("setup | tau | whole vs plain | whole vs hyb | ADED-first rounds taken / asked | their expected / accepted "
      "drafted tokens a round")
for name in specs:
    c = R.get(name)
    extra = (f" | {c['taken']} / {c['asked']} | {c['expected'] / max(c['taken'], 1):.2f} / "
             f"{c['accepted'] / max(c['taken'], 1):.2f}") if c else ""
    print(f"{name} | {run.tau(name):.2f} | {run.ratio(name, 'plain'):.3f} | {run.ratio(name, 'hyb'):.3f}{extra}")
print("per prompt, speed over plain (" + " / ".join(n for n in specs if n != "plain") + "):")
for i, row in enumerate(rows):
    p = sum(run.T["plain"][i])
    print(f"  {i} {row.get('category', '?')}: " + " / ".join(f"{p / sum(run.T[n][i]):.3f}" for n in specs if n != "plain"))
