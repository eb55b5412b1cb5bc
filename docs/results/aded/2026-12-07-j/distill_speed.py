"""Transformers' batched generate of the 1.5B with int4 weights (specdec.zoo.load_causal_lm, weights=int4): the first 16
broad prompts, 4 then 36 new tokens. `python docs/results/aded/2026-12-07-j/distill_speed.py int4 16` (distill_speed.txt)."""
import time, torch, sys
from pathlib import Path
torch.set_num_threads(2)
from specdec.zoo import load_causal_lm
from specdec.drafters.aded.distill import prompts_from
from specdec.prompt import encode_prompt
w = sys.argv[1]; B = int(sys.argv[2])
t=time.time(); m, tok = load_causal_lm("qwen2.5-coder-1.5b-instruct", weights=w); print("load", time.time()-t, flush=True)
ps = prompts_from("broad", Path("../shared/data"), B)
tok.padding_side = "left"
enc = tok.pad({"input_ids": [encode_prompt(tok, p, chat=True) for p in ps]}, return_tensors="pt")
for n in (4, 36):
    t = time.time()
    with torch.no_grad():
        out = m.generate(**enc, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
    print(w, B, n, time.time() - t, flush=True)
