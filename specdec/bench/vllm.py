"""vLLM as extra `specdec bench` setups (`--vllm plain|ngram|draft`), on the same prompt token ids.

vLLM is never imported here: each setup talks to ``specdec/backends/vllm_worker.py`` (in ``.venv-vllm``) through
``specdec.backends.vllm_client``. Starting vLLM takes minutes, so a setup starts ONE worker, at its first call, over
all the bench prompts (one request at a time: batch-1 latency, as this engine is timed), caches the
answers by prompt ids and answers every call from that cache. A setup's numbers are the worker's:

  seconds              the worker's per-request ``llm.generate`` time (prefill included), not the call's
  tokens_per_s         tokens / seconds
  drafted / accepted   vLLM's speculative counters for that request (0 for plain)
  rounds, tau          target steps = tokens - accepted (each step commits one token of its own plus the
                       drafts it accepted), tau = tokens / steps: the bonus token counts, as in this engine

Before the timed requests the worker generates once, untimed, from prompt 0 reversed (same length, but no
shared prefix, so vLLM's prefix cache gives the timed prompt 0 no head start).

Setups (names in the report: ``vllm_<setup>``):
  plain   plain decoding
  ngram   vLLM's n-gram prompt lookup, K draft tokens, prompt_lookup_max 3 / min 1 (like prompt-lookup here)
  draft   vLLM's draft-model speculation with the bench's --draft, K draft tokens
  aded    this project's ADED drafter as a vLLM proposer (custom_class, specdec/backends/vllm_proposers.py), K tokens
  suffix  this project's suffix drafter (longest suffix match) as a vLLM proposer, K tokens
  suffixdecoding  vLLM's own `suffix` method (SuffixDecoding, arctic-inference: no wheel for this platform,
          `bash eval/setup_vllm_suffix.sh` builds its suffix tree for the vLLM venv), K tokens at most
Sampling (--temperature, --top-p, --top-k, --seed) goes to vLLM's SamplingParams; outputs are then compared by
nobody (the bench compares greedy outputs only), and vLLM's own rejection sampling keeps speculation lossless.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Callable, Iterable

from specdec.config import SamplingConfig, StopConfig
from specdec.errors import InputError
from specdec.stats import GenerationStats, prompt_row

SETUPS = {"plain": None, "ngram": "prompt-lookup", "draft": "draft-model", "aded": "aded", "aded-nobudget": "aded",
          "suffix": "suffix", "suffixdecoding": "suffixdecoding"}  # setup -> drafter (speculative_config's names)
PROPOSER_OPTIONS = {"aded-nobudget": {"budget": "off"}}  # the ablation: every drafted token verified
PREFIX = "vllm_"
WARMUP_ID = "warmup"


def setup_name(setup: str) -> str:
    return PREFIX + setup


def parse_setups(names: Iterable[str]) -> list[str]:
    """Validate `--vllm` values (case-insensitive, duplicates dropped, order kept)."""
    from specdec.validate import check_choices

    return check_choices(names, SETUPS, "--vllm", "vLLM setup")


def _worker():
    """specdec.backends.vllm_client (imported late: only vLLM rows need it)."""
    from specdec.backends import vllm_client as vllm_backend

    return vllm_backend


def run_worker(req, venv=None, log_path=None, threads_bind=None):
    """One vLLM worker run: yields its events. (The one seam the tests replace.)"""
    return _worker().run_worker(req, venv, log_path=log_path, threads_bind=threads_bind)


def check(setups: list[str], *, sampling: SamplingConfig, stop: StopConfig, draft: str | None,
          venv: str | os.PathLike | None = None) -> None:
    """Everything that can be refused before a model is loaded."""
    if not setups:
        return
    V = _worker()
    if "draft" in setups and not draft:
        raise InputError("--vllm draft needs a draft model: pass --draft NAME")
    if stop.eos_token_ids is not None:
        raise InputError("--vllm stops at the model's own EOS tokens (or none with ignore_eos): custom "
                         "eos_token_ids are not supported")
    V.check_ready(V.VLLM_SUFFIX if V.VLLM_SUFFIX in setups else None, venv, flag="--vllm")


class VLLMBackend:
    """A bench `Backend` for one vLLM setup. `prepare(prompts)` (called by `specdec.bench.benchmark`) names
    every prompt the bench will ask for; the first call runs the worker over all of them. `info` is the
    setup's description for the report (vLLM version and start-up seconds filled in once it has run)."""

    def __init__(self, name: str, request, info: dict, *, venv=None, log_path=None, threads_bind=None,
                 say: Callable[[str], None] | None = None) -> None:
        self.name, self.request, self.info = name, request, info
        self.venv, self.log_path, self.threads_bind, self.say = venv, log_path, threads_bind, say
        self.prompts: list[list[int]] = []
        self.cache: dict[tuple[int, ...], dict] = {}
        self.info.setdefault("worker_starts", 0)

    def prepare(self, prompts: Iterable[list[int]]) -> None:
        self.prompts = [list(p) for p in prompts]

    def _run(self, extra: list[int] | None = None) -> None:
        prompts = list(self.prompts)
        if extra is not None and tuple(extra) not in {tuple(p) for p in prompts}:
            prompts.append(list(extra))
        todo: dict[tuple[int, ...], int] = {}
        for p in prompts:
            if tuple(p) not in self.cache:
                todo.setdefault(tuple(p), len(todo))
        if not todo:
            return
        first = next(iter(todo))
        reqs = [{"id": WARMUP_ID, "prompt_ids": list(reversed(first))}]
        reqs += [{"id": i, "prompt_ids": list(ids)} for ids, i in todo.items()]
        by_id = {i: ids for ids, i in todo.items()}
        V = _worker()
        req = replace(self.request, requests=reqs)
        self.info["worker_starts"] += 1
        t0 = time.perf_counter()
        for ev in run_worker(req, self.venv, log_path=self.log_path, threads_bind=self.threads_bind):
            kind = ev.get("event")
            if kind == "ready":
                self.info["startup_s"] = float(ev.get("startup_s", 0.0))
                self.info["vllm_version"] = ev.get("vllm")
                if self.say:
                    self.say(f"{self.name}: vLLM {ev.get('vllm')} ready in {self.info['startup_s']:.1f}s")
            elif kind == "item" and ev.get("id") != WARMUP_ID:
                self.cache[by_id[ev["id"]]] = _stats(ev)
        self.info["worker_s"] = self.info.get("worker_s", 0.0) + time.perf_counter() - t0
        missing = [i for ids, i in todo.items() if ids not in self.cache]
        if missing:
            raise V.VLLMBackendError(f"{self.name}: the vLLM worker finished without answering "
                                     f"{len(missing)} prompt(s)")

    def close(self) -> None:
        """Nothing to stop: each worker run ends with the prompts it answered."""

    def __call__(self, prompt_ids: list[int]) -> tuple[list[int], dict]:
        key = tuple(prompt_ids)
        if key not in self.cache:
            self._run(list(prompt_ids))  # the first call (or a prompt `prepare` did not name)
        st = self.cache[key]
        return list(st["token_ids"]), {k: v for k, v in st.items() if k != "token_ids"}


def _stats(ev: dict) -> dict:
    """A worker "item" event -> the bench's per-prompt stats (this engine's keys and conventions)."""
    sp = _worker().item_speed(ev)
    n, dt = sp["new_tokens"], sp["decode_s"]
    drafted, accepted, rounds = sp["drafted"], sp["accepted"], sp["rounds"]
    reason = sp["stop_reason"]
    stats = GenerationStats(new_tokens=n, total_s=dt, drafted=drafted, accepted=accepted, rounds=rounds,
                            target_calls=rounds,
                            stop_reason={"length": "max_new_tokens", "stop": "eos_or_stop_string"}.get(reason, reason))
    return prompt_row(stats, token_ids=list(ev.get("token_ids", [])), vllm_drafts=sp["vllm_drafts"])


def vllm_backends(setups: Iterable[str], *, target: str, draft: str | None, k: int, sampling: SamplingConfig,
                  stop: StopConfig, max_context: int, dtype: str = "bfloat16", cache_dir: str | None = None,
                  ngram_options: dict | None = None, drafter_options: dict | None = None, venv: str | os.PathLike | None = None,
                  log_stem: str | os.PathLike | None = None, threads: int | None = None,
                  say: Callable[[str], None] | None = None) -> dict[str, VLLMBackend]:
    """One `VLLMBackend` per setup ("plain", "ngram", "draft"), named `vllm_<setup>`, for
    `specdec.bench.benchmark(..., extra=...)`. Models are given to vLLM as their local folders (zoo names
    resolved as `specdec eval --backend vllm` does); max_model_len = `max_context`; `threads` binds vLLM's
    CPU threads to cores 0..threads-1; `log_stem`: vLLM's log goes to `<log_stem>.<setup name>.log`."""
    from pathlib import Path

    from specdec.zoo import resolve

    names = parse_setups(setups)
    check(names, sampling=sampling, stop=stop, draft=draft, venv=venv)
    if not names:
        return {}
    V = _worker()
    dtype, why = V.worker_dtype(dtype)
    if why and say:
        say(why)
    model_dir = resolve(target, cache_dir)
    draft_dir = resolve(draft, cache_dir) if "draft" in names else None
    ngram = {"max_ngram": 3, "min_ngram": 1, **(ngram_options or {})}
    threads_bind = f"0-{threads - 1}" if threads else None
    out: dict[str, VLLMBackend] = {}
    for s in names:
        drafter = SETUPS[s]
        spec_cfg = V.speculative_config(drafter, k, draft_dir, ngram if s == "ngram" else None)
        req = V.WorkerRequest(model=model_dir, dtype=dtype, max_model_len=int(max_context),
                              speculative_config=spec_cfg, max_tokens=stop.max_new_tokens,
                              stop=list(stop.stop_strings), ignore_eos=stop.ignore_eos, batch=False,
                              **V.sampling_fields(sampling),
                              drafter_options=dict(drafter_options or {}) if drafter in ("aded", "suffix") else {},
                              proposer_options=dict(PROPOSER_OPTIONS.get(s, {})))
        name = setup_name(s)
        info = {"backend": "vllm", "vllm_setup": s, "drafter": "ngram" if s == "ngram" else drafter,
                "sampling": {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k,
                             "seed": sampling.seed},
                "k": k if drafter else None, "model": model_dir, "dtype": dtype, "max_model_len": int(max_context),
                "speculative_config": spec_cfg, "batch": False, "warmup": "prompt 0 reversed, untimed"}
        if s == "draft":
            info["draft"] = draft_dir
        if drafter:
            info["speedup_baseline"] = setup_name("plain")  # -> "speedup_vs_vllm_plain" when vllm_plain ran
        log_path = Path(f"{log_stem}.{name}.log") if log_stem else None  # vLLM's own log lines
        out[name] = VLLMBackend(name, req, info, venv=venv, log_path=log_path, threads_bind=threads_bind, say=say)
    return out
