"""ADED with the bundled store against ADED with another store (the 0.5B's GSM8K answers, the store bundled before
2026-12-07-j, by default), in one process: plain decoding and ADED under each store (ab_common.Runs); per setup tau
and the medians over prompts of the whole generation's time as a ratio to plain's and to the other store's row.
`[PROMPTS=file.jsonl] [STORE=other.safetensors] python docs/results/aded/2026-12-07-j/store_ab.py [N] [ROUNDS]`
(the old store: `git show 9c46dd9:specdec/drafters/aded/stores/qwen2.5-self-gsm8k.safetensors > old.safetensors`)."""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from ab_common import Runs, args, prompts  # noqa: E402
from specdec.api import load  # noqa: E402
from specdec.config import SpecConfig  # noqa: E402

n, rounds = args()
other = os.environ.get("STORE", "old.safetensors")
if not os.path.isfile(other):
    sys.exit(f"error: no store file {other} (set STORE=, or extract the old one as the docstring says)")
specs = {"plain": SpecConfig(drafter="none"), "aded": SpecConfig(drafter="aded"),
         "aded-other-store": SpecConfig(drafter="aded", drafter_options={"store": other})}
dec = load("qwen2.5-coder-1.5b-instruct", spec=specs["plain"])
run = Runs(dec, {name: (s, None) for name, s in specs.items()}, prompts(n), rounds)
print("setup | tau | whole vs plain | whole vs aded-other-store")
for name in specs:
    print(f"{name} | {run.tau(name):.2f} | {run.ratio(name, 'plain'):.3f} | {run.ratio(name, 'aded-other-store'):.3f}")
