import sys, torch
sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__file__), "../../../.."))
from specdec.zoo import load_causal_lm
from specdec.engine.runner import ModelRunner
torch.set_num_threads(2)
model, _ = load_causal_lm(sys.argv[1], dtype="bfloat16")
for N in [int(x) for x in sys.argv[2:]]:
    r = ModelRunner(model, max_context=256, query_len=N)
    r.prefill(torch.arange(1000, 1050)[None])
    new = torch.arange(2000, 2000 + N)[None]
    tog, _ = r.forward(new); r.rollback(50)
    alone = []
    for t in range(N):
        l, _ = r.forward(new[:, t:t+1]); alone.append(l); r.commit(1)
    alone = torch.cat(alone, 1)
    bad = [t for t in range(N) if not torch.equal(tog[0, t], alone[0, t])]
    print(f"N={N}: rows differing between one pass and one-per-pass: {bad}", flush=True)
