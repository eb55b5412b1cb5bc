"""`specdec bench` from plan to report: every check before the first model loads, then one runner group at a
time (its models freed before the next), then the external engines (llama.cpp's own server, vLLM, HF),
the report rewritten after every setup.

Groups: this engine's setups run on the runner the bench's --backend / --weights choose, unless a setup
names its own (`--setup NAME=...,backend=llamacpp`); each runner gets its own plain-decoding row (`plain`
for the bench's own runner, `plain@<runner>` for another) and its setups' `speedup` is over that row, so a
speedup is always the same runner and weights with and without speculation. Every row generates exactly
max_new_tokens (ignore EOS) unless --stop-at-eos: the same work is timed everywhere.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from specdec.bench import runner as R
from specdec.bench.memory import release_memory
from specdec.bench.prompts import BenchPrompt, auto_max_context
from specdec.bench.report import build_report, machine_info, write_json_atomic
from specdec.validate import check_output_path
from specdec.api import open_run
from specdec.config import DEFAULT_K, EngineConfig, RunConfig, SamplingConfig, SpecConfig, StopConfig
from specdec.errors import InputError

Say = Callable[[str], None]


@dataclass
class BenchPlan:
    target: str
    draft: str | None
    prompts: list[BenchPrompt]
    engine: EngineConfig
    setups: list[R.SetupSpec]
    sampling: SamplingConfig
    stop: StopConfig
    k: int | None = None  # -k: None = each policy's default (SpecConfig.k)
    chat: bool | None = None
    hf: bool = False
    vllm: list[str] = field(default_factory=list)
    llamacpp: list[str] = field(default_factory=list)
    llama_server: str | None = None
    json_out: str | None = None
    plot_out: str | None = None
    config_extra: dict = field(default_factory=dict)  # recorded as is (the command's own options)
    cost_curve: bool = False  # also time one pass of 1..64 rows on each of this engine's runners (report["cost_curves"])
    interleave: bool = True  # this engine's setups prompt by prompt (specdec.bench.runner.run_bench), else setup by setup
    repeats: int = 1  # interleaved: each prompt this many times through every setup, order rotating; median-time run kept


def _group_key(engine: EngineConfig, target: str) -> tuple[str, str]:
    from specdec.runners import resolve_backend, resolve_weights

    backend = resolve_backend(engine, target)
    return backend, resolve_weights(engine, target) if backend == "torch" else "gguf"


def plan_groups(plan: BenchPlan) -> list[tuple[str, EngineConfig, list[R.SetupSpec]]]:
    """[(plain row name, engine, setups)], the bench's own runner first."""
    base_key = _group_key(plan.engine, plan.target)
    groups: dict[tuple[str, str], tuple[str, EngineConfig, list]] = {base_key: ("plain", plan.engine, [])}
    for s in plan.setups:
        engine = replace(plan.engine, **s.engine_options) if s.engine_options else plan.engine
        key = _group_key(engine, plan.target)
        if key not in groups:
            groups[key] = (f"plain@{key[0]}" + (f"-{key[1]}" if key[0] == "torch" else ""), engine, [])
        if s.drafter is None and s.engine_options and key != base_key:
            continue  # `NAME=plain,weights=..`: the group's own plain@ row is that setup; timing it twice wastes a row
        groups[key][2].append(s)
    return list(groups.values())


class Recorder:
    """The report so far, rewritten (atomically) to --json after every setup: a bench that fails late keeps
    what it measured, and a reader of the file sees `complete: false` until the end."""

    def __init__(self, plan: BenchPlan, config: dict, machine: dict, categories: list[str], say: Say) -> None:
        self.plan, self.config, self.machine, self.categories, self.say = plan, config, machine, categories, say
        self.results: dict[str, dict] = {}
        self.info: dict[str, dict] = {}
        self.curves: dict[str, dict] = {}  # plain row name -> its runner's pass cost curve

    def add(self, name: str, result: dict, info: dict | None = None) -> None:
        self.results[name] = result
        if info is not None:
            self.info[name] = info
        if result.get("failed"):
            self.say(f"{name}: FAILED ({result['error']})")
        else:
            self.say(f"{name}: {result['median_tokens_per_s']:.2f} tok/s (median), peak RSS "
                     f"{result.get('peak_rss_mb') or 0:.0f} MB")
        self.write(complete=False)

    def report(self, complete: bool) -> dict:
        rep = build_report(self.results, self.info, self.machine, {**self.config, "complete": complete})
        rep["complete"] = complete
        if self.curves:
            rep["cost_curves"] = dict(self.curves)
        return rep

    def write(self, complete: bool) -> dict:
        rep = self.report(complete)
        if self.plan.json_out:
            write_json_atomic(self.plan.json_out, rep)
        return rep


def _speedups(results: dict[str, dict], info: dict[str, dict]) -> None:
    """`speedup`: over the row's own runner's plain decoding (this engine's rows), else over this bench's own
    plain decoding; `speedup_vs_plain`: over the bench's own plain decoding, for rows of another runner or
    engine; `speedup_vs_<x>_plain`: a speculative external row over that engine's own plain row."""
    def tps(name):
        r = results.get(name) or {}
        return None if r.get("failed") else r.get("median_tokens_per_s")

    base_name = "plain_fast" if "plain_fast" in results else "plain"
    base = tps(base_name)
    for name, r in results.items():
        if r.get("failed"):
            continue
        if name == "plain" or name.startswith("plain@") or name == "plain_fast":
            ref = name if name != "plain" else base_name
        else:
            ref = (info.get(name) or {}).get("plain_reference") or base_name
            if ref == "plain":
                ref = base_name
        own = tps(ref)
        r["speedup"] = R._ratio(r["median_tokens_per_s"], own) if own else None
        if ref != base_name and base:
            r["speedup_vs_plain"] = R._ratio(r["median_tokens_per_s"], base)
    R.add_baseline_speedups(results, info)


def anchors(results: dict[str, dict]) -> dict:
    """The issue's yardstick in one place: this engine's fastest row against llama.cpp's fastest row."""
    ok = {n: r["median_tokens_per_s"] for n, r in results.items() if not r.get("failed")}
    ours = {n: v for n, v in ok.items() if not n.startswith(("llamacpp_", "vllm_", "hf_"))}
    out: dict = {}
    if ours:
        best = max(ours, key=ours.get)
        out["best_specdec"] = {"setup": best, "tokens_per_s": ours[best]}
    for prefix in ("llamacpp_", "vllm_"):
        theirs = {n: v for n, v in ok.items() if n.startswith(prefix)}
        if theirs and ours:
            b = max(theirs, key=theirs.get)
            key = prefix.rstrip("_")
            out[f"best_{key}"] = {"setup": b, "tokens_per_s": theirs[b]}
            out[f"best_specdec_vs_best_{key}"] = ours[out["best_specdec"]["setup"]] / theirs[b]
    return out


def check_plan(plan: BenchPlan) -> None:
    """Everything that can be refused before a model loads."""
    from specdec.bench import vllm as bench_vllm
    from specdec.spec_check import check_spec

    check_output_path(plan.json_out, "--json", ".json")
    check_output_path(plan.plot_out, "--plot", ".png")
    R.check_repeats(plan.repeats, plan.interleave)
    names = [s.name for s in plan.setups]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise InputError(f"two setups are named {sorted(dup)[0]!r}")
    for s in plan.setups:
        check_spec(s.spec())
        for key in s.engine_options:
            EngineConfig(**{key: s.engine_options[key]})  # a bad backend / weights value: one line now
    if any(s.drafter == "draft-model" for s in plan.setups) and not plan.draft:
        raise InputError("a draft-model setup needs --draft NAME")
    bench_vllm.check(plan.vllm, sampling=plan.sampling, stop=plan.stop, draft=plan.draft)
    if plan.llamacpp:
        from specdec.bench import llamacpp_server as L

        L.parse_setups(plan.llamacpp)
        if "draft" in plan.llamacpp and not plan.draft:
            raise InputError("--llamacpp draft needs a draft model: pass --draft NAME")
        if not plan.sampling.greedy:
            raise InputError("--llamacpp rows decode greedily only; drop --temperature or the --llamacpp rows")
        L.find_server(plan.llama_server)


def run(plan: BenchPlan, say: Say, progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Run the whole bench; returns the final report (also written to --json)."""
    from specdec.api import load_tokenizer
    from specdec.prompt import encode_prompt

    check_plan(plan)
    tokenizer = load_tokenizer(plan.target, plan.engine)
    engine = plan.engine
    if engine.max_context == EngineConfig().max_context and not plan.config_extra.get("max_context_given"):
        engine = replace(engine, max_context=auto_max_context(tokenizer, plan.prompts, plan.stop.max_new_tokens,
                                                              plan.chat))
    ids, skipped, categories = [], [], []
    for i, p in enumerate(plan.prompts):
        enc = encode_prompt(tokenizer, p.text, plan.chat)
        if len(enc) + plan.stop.max_new_tokens > engine.max_context:
            skipped.append({"index": i, "id": p.id, "prompt_tokens": len(enc)})
        else:
            ids.append(enc)
            categories.append(p.category)
    if not ids:
        raise InputError(f"every prompt is longer than max_context ({engine.max_context}) minus max_new_tokens "
                         f"({plan.stop.max_new_tokens}); raise --max-context or lower --max-new-tokens")
    for s in skipped:
        say(f"skipped prompt {s['index']} ({s['prompt_tokens']} tokens): too long for max_context")
    plan = replace(plan, engine=engine)
    groups = plan_groups(plan)
    config = {"target": plan.target, "draft": plan.draft, "k": plan.k, "engine": vars_(engine),
              "sampling": vars_(plan.sampling), "stop": vars_(plan.stop), "num_prompts": len(ids),
              "prompt_tokens": [len(x) for x in ids], "prompt_categories": categories, "skipped_prompts": skipped,
              "max_new_tokens": plan.stop.max_new_tokens, "ignore_eos": plan.stop.ignore_eos,
              "chat": bool(getattr(tokenizer, "chat_template", None)) if plan.chat is None else plan.chat,
              "groups": [{"plain": g[0], "engine": vars_(g[1]), "setups": [s.name for s in g[2]]} for g in groups],
              "vllm": plan.vllm, "llamacpp": plan.llamacpp, "hf": plan.hf, "interleave": plan.interleave,
              "repeats": plan.repeats,
              "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **plan.config_extra}
    rec = Recorder(plan, config, machine_info(engine.dtype, engine.compile), categories, say)
    greedy = plan.sampling.greedy
    ref_out: list[list[int]] | None = None
    # llama-server rows run interleaved with this engine's own rows (prompt by prompt, its servers up beside the
    # engine's models: each server uses its CPU only while it answers) so that a machine whose speed drifts slows
    # them alike; with --by-setup, and vLLM always (its server holds the cores while idle), they run after
    inline = _llamacpp_backends(plan, say) if plan.interleave else {}
    for plain, eng, specs in groups:
        t0 = time.perf_counter()
        dec = open_run(RunConfig(target=plan.target, draft=plan.draft, spec=SpecConfig(drafter=None, k=plan.k),
                                 engine=eng, stop=None))  # checked by the CLI's check_run and check_plan
        say(f"loaded {plan.target} on the {dec.target.name} runner "
            f"({dec.target.weights}) in {time.perf_counter() - t0:.1f} s")
        if plain == "plain":  # the machine section describes the bench's own runner as really loaded
            rec.machine.update(runner=dec.target.name, weights=dec.target.weights,
                               dtype=dec.target.compute_dtype)
        if plan.cost_curve:
            rec.curves[plain] = _cost_curve(dec.target, say)
        backends, info = R.build_setups(dec, specs, plan.sampling, plan.stop, plain=plain)
        for name in backends:
            info[name]["load_s"] = time.perf_counter() - t0
        side = inline if plain == "plain" else {}
        for name, (backend, binfo) in side.items():
            backend.prepare(ids)
            backends[name], info[name] = backend, binfo
        try:
            res = R.run_bench(backends, ids, greedy=greedy, reference=plain, progress=progress,
                              on_setup=lambda n, r: rec.add(n, r, info.get(n)), keep_going=True,
                              interleave=plan.interleave, repeats=plan.repeats)
        finally:
            for name, (backend, binfo) in side.items():
                _close(backend, rec, name)
        rec.info.update({n: i for n, i in info.items() if n not in side})
        if plain == "plain":  # external engines are compared with this engine's own plain decoding
            ref_out = [row["output_ids"] for row in res[plain]["per_prompt"]]
        del dec, backends
        release_memory()
    after = {**({} if plan.interleave else _llamacpp_backends(plan, say)), **_vllm_backends(plan, say)}
    for name, (backend, info) in after.items():
        backend.prepare(ids)
        try:
            R.run_bench({name: backend}, ids, greedy=greedy, reference=name, progress=progress,
                        ref_outputs=ref_out, on_setup=lambda n, r: rec.add(n, r, info), keep_going=True)
        except Exception as e:  # noqa: BLE001 - an external engine failing must not lose the rest
            rec.add(name, {"failed": True, "error": " ".join(f"{type(e).__name__}: {e}".split())[:500],
                           "per_prompt": []}, info)
        finally:
            _close(backend, rec, name)
            release_memory()
    if plan.hf:
        _run_hf(plan, ids, engine, ref_out, rec, progress)
    _speedups(rec.results, rec.info)
    cats = set(categories)
    final = rec.report(complete=True)
    final["anchors"] = anchors(rec.results)
    if len(cats) > 1:
        final["per_category"] = R.by_category(rec.results, categories, "plain_fast" if "plain_fast" in rec.results
                                              else "plain")
    if plan.json_out:
        write_json_atomic(plan.json_out, final)
    return final


def _cost_curve(runner, say: Say) -> dict:
    """One pass of 1..64 rows after 256 committed tokens, the fastest of 5 (specdec.runners.costs.measure)."""
    from specdec.runners.costs import CURVE_ROWS, measure

    t0 = time.perf_counter()
    curve = measure(runner, rows=CURVE_ROWS).curve()
    say(f"{runner.name} pass costs by rows: " + ", ".join(f"{r}: {ms:.0f} ms" for r, ms in zip(curve["rows"], curve["ms"]))
        + f" ({time.perf_counter() - t0:.0f} s)")
    return {"runner": runner.name, "weights": runner.weights, **curve}


def vars_(cfg) -> dict:
    from dataclasses import asdict

    return asdict(cfg)


def _llamacpp_backends(plan: BenchPlan, say: Say) -> dict[str, tuple[R.ExternalBackend, dict]]:
    """llama.cpp's server rows: name -> (backend, info); each server starts at its first call."""
    if not plan.llamacpp:
        return {}
    from specdec.bench import llamacpp_server as L
    from specdec.runners import _gguf_of

    gguf = _gguf_of(plan.target, plan.engine.cache_dir)
    draft_gguf = _gguf_of(plan.draft, plan.engine.cache_dir) if plan.draft else None
    if gguf is None:
        raise InputError(f"--llamacpp needs a GGUF target (a zoo GGUF model or a .gguf file), not {plan.target!r}")
    import torch

    backends = L.llamacpp_backends(
        plan.llamacpp, server=L.find_server(plan.llama_server), gguf=gguf, draft_gguf=draft_gguf,
        k=plan.k or DEFAULT_K, threads=plan.engine.threads or torch.get_num_threads(),
        max_context=plan.engine.max_context, max_new_tokens=plan.stop.max_new_tokens,
        greedy=plan.sampling.greedy, log_stem=_log_stem(plan), say=say)
    return {name: (b, b.info) for name, b in backends.items()}


def _vllm_backends(plan: BenchPlan, say: Say) -> dict[str, tuple[R.ExternalBackend, dict]]:
    """vLLM rows: name -> (backend, info)."""
    if not plan.vllm:
        return {}
    from specdec.bench import vllm as bench_vllm

    backends = bench_vllm.vllm_backends(
        plan.vllm, target=plan.target, draft=plan.draft, k=plan.k or DEFAULT_K, sampling=plan.sampling, stop=plan.stop,
        max_context=plan.engine.max_context, dtype=plan.engine.dtype, cache_dir=plan.engine.cache_dir,
        threads=plan.engine.threads, log_stem=_log_stem(plan), say=say)
    return {name: (b, b.info) for name, b in backends.items()}


def _log_stem(plan: BenchPlan) -> Path | None:
    """Where external servers write their logs: beside the report, as .REPORT.NAME.log."""
    return Path(plan.json_out).parent / f".{Path(plan.json_out).name}" if plan.json_out else None


def _close(backend: R.ExternalBackend, rec: Recorder, name: str) -> None:
    """Stop an external backend's server and keep its final description (version, peak RSS, ...)."""
    backend.close()
    rec.info[name] = final = dict(backend.info)
    if final.get("peak_rss_mb") and name in rec.results:  # the server's own memory, not this process's
        rec.results[name]["peak_rss_mb"] = final["peak_rss_mb"]


def _run_hf(plan: BenchPlan, ids, engine: EngineConfig, ref_out, rec: Recorder, progress) -> None:
    """HF generate (and assisted generation with --draft) on the bf16 HF models, loaded for these rows only."""
    from specdec.api import _load_hf

    hf_engine = replace(engine, weights="bf16", backend="torch")
    model, tok = _load_hf(plan.target, hf_engine)
    assistant = _load_hf(plan.draft, hf_engine)[0] if plan.draft else None
    from specdec.zoo.load import eos_token_ids

    eos = set(eos_token_ids(tok, model))
    backends, info = R.hf_setups(model, tok, eos, plan.sampling, plan.stop, assistant, plan.draft)
    R.run_bench(backends, ids, greedy=plan.sampling.greedy, reference="hf_generate", progress=progress,
                ref_outputs=ref_out, on_setup=lambda n, r: rec.add(n, r, info.get(n)), keep_going=True)
    del model, assistant, backends
    release_memory()
