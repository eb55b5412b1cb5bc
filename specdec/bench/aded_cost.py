"""`specdec aded cost`'s measurement: the target's forward time per pass length and its plain greedy outputs on
a few prompts, which `specdec.drafters.aded.tune` replays to rank tree budgets (nodes, depth) by tokens/s. It
loads and runs the engine, so it lives above it, beside the bench."""
from __future__ import annotations


def measure(model, compile, context, max_n, ns, pairs, repeats, dataset, prompts, max_new_tokens, data, console,
             stat="min"):
    """Forward times per length and plain greedy references (the target's own outputs): `specdec aded cost`."""
    from specdec.api import SpecDecoder
    from specdec.config import EngineConfig, StopConfig
    from specdec.drafters.aded.tune import verify_cost
    from specdec.zoo import load_causal_lm

    hf, tok = load_causal_lm(model)
    dec = SpecDecoder(hf, tok, engine=EngineConfig(compile=compile, max_context=context + 2 * max_n + 512))
    grid = sorted({int(x) for x in ns.split(",")} if ns else set(range(1, max_n + 1)) | {1 + n for n, _ in pairs})
    console.print(f"timing target forwards, n in {grid[0]}..{grid[-1]} (compile={compile})")
    t = verify_cost(dec.target, grid, context=context, repeats=repeats, progress=console.print, stat=stat)
    from specdec.drafters.aded.corpus import data_dir
    from specdec.jsonl import read_jsonl

    base = data_dir(str(data) if data else None)
    if dataset == "gsm8k":
        texts = [r["question"] for _, r in read_jsonl(base / "gsm8k" / "test.jsonl")][:prompts]
    else:
        rows = [r["turns"][0] for _, r in read_jsonl(base / "spec_bench" / "question.jsonl")]
        texts = [rows[i * len(rows) // prompts] for i in range(prompts)]  # spread over the categories
    ids, refs = [], []
    for text in texts:
        p = dec.encode(text)
        r = dec.generate_ids(p, stop=StopConfig(max_new_tokens=max_new_tokens))
        ids.append(p[0].tolist())
        refs.append(r)
        console.print(f"reference: {len(r)} tokens")
    return t, ids, refs, max(dec.target.vocab_size, len(tok)), tok
