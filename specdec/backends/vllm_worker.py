"""The vLLM side of ``--backend vllm``: run as ``.venv-vllm/bin/python specdec/backends/vllm_worker.py REQUEST.json``.

It imports only the standard library and vLLM (its venv has its own torch / transformers), builds one
``LLM`` and answers the requests of one JSON file, printing one line per event on stdout, each prefixed
with ``@@specdec@@ `` (vLLM's own log lines pass through unprefixed):

  {"event": "ready", "startup_s": ..., "vllm": "0.32.0"}
  {"event": "item", "id": ..., "token_ids": [...], "text": ..., "gen_s": ..., "spec": {...}}   (generate)
  {"event": "item", "id": ..., "loglik": [...], "greedy": [...], "gen_s": ...}              (loglik)
  {"event": "done", "total_s": ...}          or          {"event": "error", "message": ...}

Request fields: model, dtype, max_model_len, speculative_config (null = plain), enforce_eager, max_tokens, ignore_eos,
stop, batch (false: one request at a time, the batch-1 latency this engine measures; true: all at once),
requests: [{"id", "prompt_ids"}] (generate greedily) and/or [{"id", "seqs", "n_cont"}] (log-likelihood of
the last n_cont tokens of each sequence).
Prompts are token ids, so they are exactly the prompts the main process built.
"""
from __future__ import annotations

import json
import sys
import time

MARK = "@@specdec@@ "


def emit(obj: dict) -> None:
    sys.stdout.write(MARK + json.dumps(obj) + "\n")
    sys.stdout.flush()


def spec_counters(llm) -> dict:
    """vLLM's cumulative speculative-decoding counters (drafts, draft tokens, accepted tokens)."""
    out = {"drafts": 0, "draft_tokens": 0, "accepted_tokens": 0}
    try:
        metrics = llm.get_metrics()
    except Exception:  # noqa: BLE001 - metrics are optional
        return out
    names = {"vllm:spec_decode_num_drafts": "drafts", "vllm:spec_decode_num_draft_tokens": "draft_tokens",
             "vllm:spec_decode_num_accepted_tokens": "accepted_tokens"}
    for m in metrics:
        key = names.get(getattr(m, "name", ""))
        if key and hasattr(m, "value"):
            out[key] += int(m.value)
    return out


def _delta(a: dict, b: dict) -> dict:
    return {k: b[k] - a[k] for k in a}


def run(req: dict) -> None:
    t0 = time.perf_counter()
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt
    import vllm

    kwargs = dict(model=req["model"], dtype=req.get("dtype", "bfloat16"), max_model_len=req.get("max_model_len", 2048),
                  disable_log_stats=False, seed=req.get("seed", 0))
    if req.get("speculative_config"):
        kwargs["speculative_config"] = req["speculative_config"]
    if req.get("enforce_eager"):
        kwargs["enforce_eager"] = True
    if req.get("max_num_seqs"):
        kwargs["max_num_seqs"] = int(req["max_num_seqs"])
    llm = LLM(**kwargs)
    emit({"event": "ready", "startup_s": time.perf_counter() - t0, "vllm": getattr(vllm, "__version__", "?")})

    t_all = time.perf_counter()
    reqs = req["requests"]
    gen = [r for r in reqs if "seqs" not in r]  # {"id", "prompt_ids"}: generate
    ll_reqs = [r for r in reqs if "seqs" in r]  # {"id", "seqs", "n_cont"}: log-likelihood of continuations
    if gen:
        sp = SamplingParams(temperature=float(req.get("temperature", 0.0)), top_p=float(req.get("top_p", 1.0)),
                            top_k=int(req.get("top_k", 0)), seed=req.get("seed") if req.get("temperature") else None,
                            max_tokens=int(req["max_tokens"]), stop=list(req.get("stop") or []) or None,
                            ignore_eos=bool(req.get("ignore_eos", False)))
        if req.get("batch"):
            before = spec_counters(llm)
            t = time.perf_counter()
            outs = llm.generate([TokensPrompt(prompt_token_ids=r["prompt_ids"]) for r in gen], sp, use_tqdm=False)
            dt = time.perf_counter() - t
            emit({"event": "batch", "wall_s": dt, "requests": len(gen), "spec": _delta(before, spec_counters(llm))})
            for r, o in zip(gen, outs):
                c = o.outputs[0]
                emit({"event": "item", "id": r["id"], "token_ids": list(c.token_ids), "text": c.text,
                      "gen_s": dt / len(gen), "finish_reason": c.finish_reason, "batched": True})
        else:
            for r in gen:
                before = spec_counters(llm)
                t = time.perf_counter()
                o = llm.generate([TokensPrompt(prompt_token_ids=r["prompt_ids"])], sp, use_tqdm=False)[0]
                dt = time.perf_counter() - t
                c = o.outputs[0]
                emit({"event": "item", "id": r["id"], "token_ids": list(c.token_ids), "text": c.text, "gen_s": dt,
                      "finish_reason": c.finish_reason, "spec": _delta(before, spec_counters(llm))})
    if ll_reqs:
        sp = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
        for r in ll_reqs:
            t = time.perf_counter()
            outs = llm.generate([TokensPrompt(prompt_token_ids=s) for s in r["seqs"]], sp, use_tqdm=False)
            lls, greedy = [], []
            for seq, n, o in zip(r["seqs"], r["n_cont"], outs):
                plp = o.prompt_logprobs  # per position: {token id: Logprob} (None at position 0)
                ll, g = 0.0, True
                for pos in range(len(seq) - n, len(seq)):
                    lp = plp[pos][seq[pos]]
                    ll += float(lp.logprob)
                    g = g and getattr(lp, "rank", 1) == 1
                lls.append(ll)
                greedy.append(g)
            emit({"event": "item", "id": r["id"], "loglik": lls, "greedy": greedy, "gen_s": time.perf_counter() - t})
    emit({"event": "done", "total_s": time.perf_counter() - t_all})


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python specdec/backends/vllm_worker.py REQUEST.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        req = json.load(f)
    try:
        run(req)
    except Exception as e:  # noqa: BLE001 - reported to the parent as one line
        emit({"event": "error", "message": f"{type(e).__name__}: {e}"})
        return 1
    return 0


if __name__ == "__main__":  # vLLM spawns processes: everything runs under this guard
    sys.exit(main(sys.argv[1:]))
