"""Benchmark runner: the same prompts through several *setups*, each a `Backend`.

A backend is any callable `prompt_ids (list[int]) -> (output ids, stats dict)`; `build_setups` makes the
standard ones (this engine plain / speculative, HF `generate`, HF assisted generation) and other backends
(e.g. vLLM) are added by putting more entries in the dict given to `run_bench`.

Stats dict keys (missing / None where a backend cannot know them): tokens, seconds, tokens_per_s,
acceptance_rate, mean_accepted_length (tau, incl. the bonus token), target_calls, drafted, accepted,
rounds, compile_s, stop_reason.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from collections.abc import Iterable
from typing import Callable, Protocol, runtime_checkable

import torch

from specdec.config import SamplingConfig, SpecConfig, StopConfig, parse_kv
from specdec.errors import InputError
from specdec.stats import GenerationStats, prompt_row
from specdec.spec_check import draft_length

Backend = Callable[[list[int]], tuple[list[int], dict]]


@runtime_checkable
class ExternalBackend(Protocol):
    """Another engine's row (llama-server, vLLM): a `Backend` with a life of its own around the calls."""

    info: dict  # the setup's description for the report, filled in as the engine starts and stops

    def prepare(self, prompts: Iterable[list[int]]) -> None:
        """Every prompt the bench will ask for, before the first call (nothing starts yet)."""

    def __call__(self, prompt_ids: list[int]) -> tuple[list[int], dict]:
        """(output ids, stats row) of one prompt; the engine starts at the first call."""

    def close(self) -> None:
        """Stop whatever the calls started (a server process); the bench calls it once, also after a failure."""
RESERVED = ("plain", "plain_fast", "hf_generate", "hf_assisted")
ENGINE_KEYS = ("backend", "weights")  # --setup keys that choose the setup's runner, not drafter options


@dataclass(frozen=True)
class SetupSpec:
    """One speculative setup of this engine: `NAME=DRAFTER[:POLICY[:K]]` on the command line."""

    name: str
    drafter: str | None
    policy: str = "constant"
    k: int | None = None  # None: -k, else the policy's default (SpecConfig.k)
    drafter_options: dict = field(default_factory=dict, hash=False)
    policy_options: dict = field(default_factory=dict, hash=False)
    engine_options: dict = field(default_factory=dict, hash=False)  # backend= / weights= (its own runner)
    guard: bool = True  # guard=false: speculate every round, even where it loses time

    def spec(self) -> SpecConfig:
        return SpecConfig(drafter=self.drafter, policy=self.policy, k=self.k, guard=self.guard,
                          drafter_options=dict(self.drafter_options), policy_options=dict(self.policy_options))


def parse_setup(text: str, default_k: int | None = None, default_policy: str = SpecConfig().policy) -> SetupSpec:
    """`NAME=DRAFTER[:POLICY[:K]][,KEY=VALUE...]`: KEY=VALUE pairs are drafter options, `policy.KEY=VALUE`
    policy options, `backend=` / `weights=` the setup's runner (values parsed as JSON where they can be), e.g.
    `aded-chain=aded:constant:7,store=self.safetensors,chain=true`, `pp=draft-model:specdecpp,policy.threshold=0.3`
    or `ll=prompt-lookup,backend=llamacpp`."""
    text, _, opts_text = text.partition(",")
    opts = parse_kv([o for o in opts_text.split(",") if o.strip()], "--setup option")
    e_opts = {k: opts.pop(k) for k in ENGINE_KEYS if k in opts}
    guard = opts.pop("guard", True)
    if not isinstance(guard, bool):
        raise InputError(f"--setup {text!r}: guard must be true or false, got {guard!r}")
    d_opts = {k: v for k, v in opts.items() if not k.startswith("policy.")}
    p_opts = {k[len("policy."):]: v for k, v in opts.items() if k.startswith("policy.")}
    spec = _parse_setup_head(text, default_k, default_policy)
    return SetupSpec(spec.name, spec.drafter, spec.policy, spec.k, d_opts, p_opts, e_opts, guard)


def _parse_setup_head(text: str, default_k: int | None, default_policy: str) -> SetupSpec:
    name, eq, rest = text.partition("=")
    parts = rest.split(":") if eq else []
    if not eq or not name or not parts[0] or len(parts) > 3:
        raise InputError(f"--setup {text!r}: expected NAME=DRAFTER[:POLICY[:K]], e.g. pl8=prompt-lookup:constant:8")
    if name in RESERVED or name.startswith("plain@"):
        raise InputError(f"--setup {text!r}: {name!r} is reserved for a built-in setup; pick another name")
    policy = parts[1] if len(parts) > 1 and parts[1] else default_policy
    k = default_k
    if len(parts) > 2:
        if not parts[2].isdigit() or int(parts[2]) < 1:
            raise InputError(f"--setup {text!r}: K must be a positive integer")
        k = int(parts[2])
    drafter = None if parts[0] in ("none", "plain") else parts[0]
    return SetupSpec(name, drafter, policy, k)


def default_setups(has_draft: bool, k: int | None = None) -> list[SetupSpec]:
    """With a draft model: draft-model (constant K) and prompt-lookup (K); without: prompt-lookup only."""
    out = [SetupSpec("draft-model", "draft-model", "constant", k)] if has_draft else []
    return out + [SetupSpec("prompt-lookup", "prompt-lookup", "constant", k)]


def engine_backend(dec, spec: SpecConfig, sampling: SamplingConfig, stop: StopConfig) -> Backend:
    """This engine (a loaded `SpecDecoder`) with `spec` (drafter=None: plain decoding)."""

    def run(prompt_ids: list[int]) -> tuple[list[int], dict]:
        stats = GenerationStats()
        out = dec.generate_ids(torch.tensor([prompt_ids]), sampling=sampling, stop=stop, spec=spec, stats=stats)
        return out, prompt_row(stats)

    return run


def fast_plain_backend(dec, sampling: SamplingConfig, stop: StopConfig) -> Backend:
    """Plain decoding with exact mode switched off for the call (1-row passes, the fastest plain shape)."""
    run_exact = engine_backend(dec, SpecConfig(drafter=None), sampling, stop)

    def run(prompt_ids: list[int]) -> tuple[list[int], dict]:
        q, dec.target.query_len = dec.target.query_len, None
        try:
            return run_exact(prompt_ids)
        finally:
            dec.target.query_len = q

    return run


def hf_backend(model, tokenizer, eos_ids: set[int], sampling: SamplingConfig, stop: StopConfig,
               assistant=None) -> Backend:
    """HF `model.generate` (greedy, or sampling with the same settings) with the same max_new_tokens and EOS
    ids, min_new_tokens unset; `assistant` = HF assisted generation with that draft model (its defaults)."""
    from transformers import GenerationConfig

    eos = sorted(eos_ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos[0] if eos else None)
    # Every logits processor is set explicitly: a value left None would be filled from the checkpoint's
    # generation_config (e.g. Qwen's repetition_penalty=1.1, top_k=20), which this engine never applies.
    kw = dict(max_new_tokens=stop.max_new_tokens, eos_token_id=eos or None, pad_token_id=pad,
              repetition_penalty=1.0, no_repeat_ngram_size=0, typical_p=1.0, epsilon_cutoff=0.0, eta_cutoff=0.0)
    if sampling.greedy:
        kw.update(do_sample=False, temperature=1.0, top_k=50, top_p=1.0)  # HF's neutral defaults: unused, no warning
    else:
        kw.update(do_sample=True, temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p)
    if stop.stop_strings:
        kw.update(stop_strings=list(stop.stop_strings))
    if stop.ignore_eos:  # HF's equivalent of ignore_eos: EOS is masked until max_new_tokens
        kw.update(min_new_tokens=stop.max_new_tokens)
    gen_config = GenerationConfig(**kw)  # a fresh config: the checkpoint's sampling defaults are not applied

    def run(prompt_ids: list[int]) -> tuple[list[int], dict]:
        calls = [0]
        hook = model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
        ids = torch.tensor([prompt_ids], device=model.device)
        extra = {"assistant_model": assistant} if assistant is not None else {}
        if stop.stop_strings:
            extra["tokenizer"] = tokenizer
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        try:
            t0 = time.perf_counter()
            with torch.no_grad():
                out = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=gen_config, **extra)
            dt = time.perf_counter() - t0
        finally:
            hook.remove()
        new = out[0, len(prompt_ids):].tolist()
        return new, prompt_row(GenerationStats(new_tokens=len(new), total_s=dt, target_calls=calls[0]), counted=False)

    return run


def _assistant_settings(assistant) -> dict:
    """The assisted-generation settings HF will use: the draft checkpoint's, else HF's global defaults."""
    keys = ("num_assistant_tokens", "num_assistant_tokens_schedule", "assistant_confidence_threshold")
    gc = getattr(assistant, "generation_config", None)
    try:
        defaults = gc._get_default_generation_params()
    except AttributeError:  # older transformers: the defaults are the attributes themselves
        defaults = {}
    return {k: getattr(gc, k, None) if getattr(gc, k, None) is not None else defaults.get(k) for k in keys}


def build_setups(dec, specs: list[SetupSpec], sampling: SamplingConfig, stop: StopConfig,
                 plain: str = "plain") -> tuple[dict[str, Backend], dict[str, dict]]:
    """This engine's setups on one loaded target, in run order: plain decoding (named `plain`), plain_fast in
    exact mode, then each of `specs`. Returns (name -> backend, name -> description for the report)."""
    runner_info = {"backend": "specdec", "runner": dec.target.name,
                   "weights": dec.target.weights}
    backends: dict[str, Backend] = {plain: engine_backend(dec, SpecConfig(drafter=None), sampling, stop)}
    info: dict[str, dict] = {plain: {**runner_info, "drafter": None}}
    if dec.target.query_len is not None:  # exact mode: also time plain decoding in its fastest (1-row) shape
        backends["plain_fast"] = fast_plain_backend(dec, sampling, stop)
        info["plain_fast"] = {**runner_info, "drafter": None, "exact": False,
                              "note": "1-row passes; the speed reference of an exact-mode bench"}
        info[plain]["exact_query_len"] = dec.target.query_len
    for s in specs:
        if s.name in backends:
            raise InputError(f"two setups are named {s.name!r}")
        spec = s.spec()
        dec.drafter_for(spec)  # load the draft model / fail on bad options now, not halfway through
        dec.policy_for(spec)
        backends[s.name] = engine_backend(dec, spec, sampling, stop)
        info[s.name] = {**runner_info, "drafter": s.drafter, "policy": s.policy, "k": draft_length(spec),
                        "drafter_options": dict(s.drafter_options), "policy_options": dict(s.policy_options),
                        "engine_options": dict(s.engine_options), "guard": s.guard, "plain_reference": plain}
    return backends, info


def hf_setups(model, tokenizer, eos_ids: set[int], sampling: SamplingConfig, stop: StopConfig,
              assistant=None, draft: str | None = None) -> tuple[dict[str, Backend], dict[str, dict]]:
    """HF `generate` (and assisted generation with `assistant`) on an HF model of the target."""
    backends = {"hf_generate": hf_backend(model, tokenizer, eos_ids, sampling, stop)}
    info = {"hf_generate": {"backend": "transformers", "drafter": None}}
    if assistant is not None:
        backends["hf_assisted"] = hf_backend(model, tokenizer, eos_ids, sampling, stop, assistant)
        info["hf_assisted"] = {"backend": "transformers", "drafter": "assistant_model", "draft": draft,
                               **_assistant_settings(assistant)}
    return backends, info


def _ratio(num, den):
    return num / den if den else None


def summarize(per_prompt: list[dict]) -> dict:
    """Median tokens/s over prompts; alpha and tau pooled over all prompts (ratio of sums). With --repeats,
    `repeat_spread`: the median over prompts of a prompt's slowest run over its fastest (how far one generation
    moved between its runs: 1.26 for this engine's plain decoding on a Zen 4 day, docs/runners.md), else None."""
    tps = [p["tokens_per_s"] for p in per_prompt]
    drafted = [p["drafted"] for p in per_prompt if p.get("drafted") is not None]
    rounds = [p["rounds"] for p in per_prompt if p.get("rounds") is not None]
    if drafted and len(drafted) == len(per_prompt):
        alpha = _ratio(sum(p["accepted"] for p in per_prompt), sum(drafted))
    else:
        alpha = None
    if rounds and len(rounds) == len(per_prompt):
        tau = _ratio(sum(p["tokens"] for p in per_prompt), sum(rounds))
    else:  # HF: tokens per target forward
        calls = [p.get("target_calls") for p in per_prompt]
        tau = _ratio(sum(p["tokens"] for p in per_prompt), sum(calls)) if all(calls) else None
    same = [p["identical"] for p in per_prompt]
    return {
        "median_tokens_per_s": statistics.median(tps) if tps else 0.0,
        "speedup": None,  # filled in by run_bench once plain is known
        "acceptance_rate": alpha,
        "mean_accepted_length": tau,
        "identical": None if any(s is None for s in same) else all(same),
        "identical_prompts": sum(bool(s) for s in same),
        "median_seconds": statistics.median(p["seconds"] for p in per_prompt) if per_prompt else 0.0,
        "total_tokens": sum(p["tokens"] for p in per_prompt),
        "repeat_spread": _spread(per_prompt),
    }


def _spread(per_prompt: list[dict]) -> float | None:
    runs = [p["repeat_seconds"] for p in per_prompt if len(p.get("repeat_seconds") or []) > 1]
    if not runs or len(runs) < len(per_prompt) or not all(min(r) > 0 for r in runs):
        return None
    return statistics.median(max(r) / min(r) for r in runs)


def _steps(name: str, backend: Backend, prompts: list[list[int]], out: dict, *, warmup: bool, greedy: bool,
           ref_out: list[list[int]], record_ref: bool, progress: Callable[[str, int, int], None] | None,
           repeats: int = 1):
    """One setup's generations as steps (run_bench drives them setup by setup or prompt by prompt): yields after
    the untimed warm-up (prompt 0 again) and after each generation, filling `out` ("rows", "warmup_s",
    "warmup_compile_s"); with `record_ref` its first outputs become the reference (`ref_out`). With `repeats` > 1
    each prompt runs that many times; its row is the run of median time (the lower middle one for an even count),
    with every run's seconds (`repeat_seconds`), identical only if every run's output is. An answer whose stats
    say `replayed` (a backend that answers a repeat from memory: llama-server's ngram-mod) is not a run."""
    if warmup:
        if progress:
            progress(name, 0, len(prompts))
        t0 = time.perf_counter()
        _, st = backend(prompts[0])
        out["warmup_s"], out["warmup_compile_s"] = time.perf_counter() - t0, st.get("compile_s") or 0.0
        yield
    for i, ids in enumerate(prompts):
        if progress:
            progress(name, i + 1, len(prompts))
        runs = []
        for r in range(repeats):
            got, st = backend(ids)
            if record_ref and r == 0:
                ref_out.append(got)
            runs.append((got, st))
            if r < repeats - 1:
                yield
        timed = [run for run in runs if not run[1].get("replayed")] or runs[:1]  # a replayed answer is no run
        got, st = sorted(timed, key=lambda run: run[1]["seconds"])[(len(timed) - 1) // 2]
        same = all(g == ref_out[i] for g, _ in runs) if greedy and i < len(ref_out) else None
        extra = {"repeat_seconds": [run[1]["seconds"] for run in timed]} if repeats > 1 else {}
        out["rows"].append({"prompt_index": i, "prompt_tokens": len(ids), **st, **extra, "identical": same,
                            "output_ids": list(got)})
        yield


def check_repeats(repeats, interleave: bool) -> None:
    """--repeats: a whole number >= 1, above 1 only interleaved (setup by setup, nothing rotates)."""
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1 or (repeats > 1 and not interleave):
        raise InputError(f"--repeats must be a whole number >= 1, and above 1 only with --interleave; got {repeats!r}")


def run_bench(setups: dict[str, Backend], prompts: list[list[int]], *, greedy: bool = True,
              reference: str = "plain", speed_reference: str | None = None, warmup: bool = True,
              progress: Callable[[str, int, int], None] | None = None,
              ref_outputs: list[list[int]] | None = None, on_setup: Callable[[str, dict], None] | None = None,
              keep_going: bool = False, interleave: bool = False, repeats: int = 1) -> dict[str, dict]:
    """Run every setup over every prompt (one untimed warm-up generation per setup first).
    Output ids are compared with `reference`'s (run first), or with `ref_outputs` when given, when `greedy`;
    otherwise `identical` is None. Speedups are ratios of median tokens/s to `speed_reference`'s (default:
    `reference`). `on_setup(name, result)` is called as each setup finishes (the bench writes its report
    then); with `keep_going` a setup that raises is recorded as {"failed": True, "error": ...} and the others
    still run. Each result has the peak resident memory of the process while it ran (`peak_rss_mb`).

    `interleave`: every setup warms up, then each prompt runs through every setup (the reference first) before
    the next prompt, so a machine whose speed drifts during the run (a shared host: this 2-core machine's
    one-row pass measured 31 ms and 42 ms an hour apart) slows every setup alike and the per-prompt ratios stay
    side by side; the peak memory is then the whole run's, the same for every setup. Default: setup by setup.

    `repeats` (interleaved only): each prompt runs that many times through every setup, the reference first the
    first time and the order rotated by one each further time, and each setup keeps its median-time run (on a host
    whose memory bandwidth drifts, two identical setups differed per category by up to a fifth in one run:
    docs/runners.md, "Guess rows on Zen 4")."""
    from specdec.bench.memory import RssMeter

    if not prompts:
        raise InputError("no prompts to benchmark")
    check_repeats(repeats, interleave)
    order = sorted(setups, key=lambda n: n != reference)  # the reference first, others in their given order
    ref_out: list[list[int]] = list(ref_outputs) if ref_outputs is not None else []
    outs = {name: {"rows": [], "warmup_s": 0.0, "warmup_compile_s": 0.0} for name in order}
    steps = {name: _steps(name, setups[name], prompts, outs[name], warmup=warmup, greedy=greedy, ref_out=ref_out,
                          record_ref=name == reference and ref_outputs is None, progress=progress,
                          repeats=repeats)
             for name in order}
    results: dict[str, dict] = {}

    def advance(name: str) -> bool:
        """One step of `name`; False when it is done (finished, or failed and recorded)."""
        try:
            next(steps[name])
            return True
        except StopIteration:
            return False
        except Exception as e:  # noqa: BLE001 - one failing setup must not lose the others' results
            if not keep_going or (name == reference and ref_outputs is None):
                raise
            results[name] = {"failed": True, "error": " ".join(f"{type(e).__name__}: {e}".split())[:500],
                             "per_prompt": []}
            if on_setup:
                on_setup(name, results[name])
            return False

    def finish(name: str, peak_mb) -> None:
        if name in results:  # failed
            return
        rows = outs[name]["rows"]
        results[name] = {**summarize(rows), "warmup_s": outs[name]["warmup_s"],
                         "warmup_compile_s": outs[name]["warmup_compile_s"],
                         "compile_s": sum(r.get("compile_s") or 0.0 for r in rows), "peak_rss_mb": peak_mb,
                         "per_prompt": rows}
        if on_setup:
            on_setup(name, results[name])

    if interleave:
        with RssMeter() as mem:
            active = list(order)
            run = -1 if warmup else 0  # the generation each setup runs next (-1: the warm-up)
            while active:
                k = (run % repeats) % len(active) if run >= 0 else 0  # a prompt's repeat r: rotated by r
                done = {name for name in active[k:] + active[:k] if not advance(name)}
                active = [name for name in active if name not in done]
                run += 1
        for name in order:
            finish(name, mem.peak_mb)
    else:
        for name in order:
            with RssMeter() as mem:
                while advance(name):
                    pass
            finish(name, mem.peak_mb)
    base = results.get(speed_reference or reference, {}).get("median_tokens_per_s")
    for r in results.values():
        if not r.get("failed"):
            r["speedup"] = _ratio(r["median_tokens_per_s"], base) if base else None
    return {name: results[name] for name in order}


def add_baseline_speedups(results: dict[str, dict], info: dict[str, dict]) -> None:
    """For setups whose info names a `speedup_baseline` that was run (vLLM's speculative setups: vllm_plain),
    results[name]["speedup_vs_<baseline>"] = its median tokens/s over the baseline's ("speedup" itself stays
    relative to this engine's plain decoding)."""
    for name, r in results.items():
        base = (info.get(name) or {}).get("speedup_baseline")
        if base and base in results and base != name and not r.get("failed") and not results[base].get("failed"):
            r[f"speedup_vs_{base}"] = _ratio(r["median_tokens_per_s"], results[base]["median_tokens_per_s"])


def by_category(results: dict[str, dict], categories: list[str], reference: str = "plain") -> dict[str, dict]:
    # reference: the speed reference (plain, or plain_fast in an exact-mode bench)
    """Per prompt category (Spec-Bench's, "gsm8k"), each setup's summary over that category's prompts, with
    its speedup = ratio of median tokens/s to the reference's median on the same prompts.
    {category: {setup: summary-without-per_prompt}}; prompts are matched by `prompt_index`."""
    out: dict[str, dict] = {}
    for cat in dict.fromkeys(categories):
        idx = {i for i, c in enumerate(categories) if c == cat}
        rows = {name: [p for p in r["per_prompt"] if p["prompt_index"] in idx] for name, r in results.items()}
        out[cat or "(none)"] = {name: {"prompts": len(rs), **summarize(rs)} for name, rs in rows.items() if rs}
        base = out[cat or "(none)"].get(reference, {}).get("median_tokens_per_s")
        for summ in out[cat or "(none)"].values():
            summ["speedup"] = _ratio(summ["median_tokens_per_s"], base) if base else None
    return out
