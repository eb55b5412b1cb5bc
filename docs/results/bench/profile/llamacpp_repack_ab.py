import sys, time, torch, specdec
import specdec.runners.llamacpp_runner as lr
torch.set_num_threads(2)
prompts = ["Write a Python function that checks whether a number is prime.", "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?", "Explain the difference between a list and a tuple in Python."]
res = {}
for rep in [True, False, True, False]:
    lr.repack_safe = lambda L, rep=rep: rep
    dec = specdec.load("qwen2.5-coder-1.5b-instruct", draft="qwen2.5-coder-0.5b-instruct", backend="llamacpp")
    assert dec.target.repack == rep
    out = []
    for p in prompts:
        r = dec.generate(p, max_new_tokens=96, drafter=None)
        s = dec.generate(p, max_new_tokens=96, drafter="draft-model", k=4, guard=False)
        out.append((round(r.stats.tokens_per_s,2), r.token_ids == s.token_ids, round(s.stats.tokens_per_s,2)))
    print("repack", rep, out, flush=True)
    del dec
