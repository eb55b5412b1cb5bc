"""ADED under several stores in one process: plain decoding, ADED with the bundled store, and ADED with each store
file named in $STORES (space-separated), interleaved prompt by prompt in a rotating order (ab_common.Runs); per
setup tau and the medians over prompts of the whole generation's time as a ratio to plain's and to the bundled
store's row, then every prompt's speed over plain (its category).
`STORES="a.safetensors b.safetensors" [PROMPTS=file.jsonl] python docs/results/aded/2026-12-07-k/store_ab.py [N] [ROUNDS]`
(the store bundled before 2026-12-07-j: `git show 9c46dd9:specdec/drafters/aded/stores/qwen2.5-self-gsm8k.safetensors`;
run j's, bundled until this run: `git show a407fb8:specdec/drafters/aded/stores/qwen2.5-self-broad.safetensors`)."""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from ab_common import Runs, args, prompts  # noqa: E402
from specdec.api import load  # noqa: E402
from specdec.config import SpecConfig  # noqa: E402

n, rounds = args()
stores = os.environ.get("STORES", "").split()
missing = [s for s in stores if not os.path.isfile(s)]
if not stores or missing:
    sys.exit(f"error: set STORES= to store files (missing: {' '.join(missing) or 'none given'})")
specs = {"plain": SpecConfig(drafter="none"), "aded": SpecConfig(drafter="aded")}
for s in stores:
    specs["aded-" + os.path.basename(s).removesuffix(".safetensors")] = SpecConfig(drafter="aded",
                                                                                   drafter_options={"store": s})
dec = load("qwen2.5-coder-1.5b-instruct", spec=specs["plain"])
rows = prompts(n)
run = Runs(dec, {name: (s, None) for name, s in specs.items()}, rows, rounds)
print("setup | tau | whole vs plain | whole vs aded (bundled store)")
for name in specs:
    print(f"{name} | {run.tau(name):.2f} | {run.ratio(name, 'plain'):.3f} | {run.ratio(name, 'aded'):.3f}")
print("per prompt, speed over plain (" + " / ".join(n for n in specs if n != "plain") + "):")
for i, row in enumerate(rows):
    p = sum(run.T["plain"][i])
    print(f"  {i} {row.get('category', '?')}: " + " / ".join(f"{p / sum(run.T[n][i]):.3f}" for n in specs if n != "plain"))
