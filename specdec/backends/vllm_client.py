"""``--backend vllm``: the same tasks and the same prompts (token ids) through vLLM, in its own venv.

vLLM pins its own transformers, so it runs in ``.venv-vllm`` (built by ``eval/setup_vllm.sh``, following
shared/notes/vllm-cpu.md) as a subprocess: ``.venv-vllm/bin/python specdec/backends/vllm_worker.py REQUEST.json``
(run by file path: nothing of specdec is imported there).
This module (main env) writes the request, sets the environment the notes ask for (tcmalloc + Intel
OpenMP preloaded, CPU thread binding, KV cache size), streams the worker's per-item answers back, and
maps this engine's drafter settings to vLLM's ``speculative_config``:

  drafter none / plain        -> None (plain decoding)
  prompt-lookup (or "ngram")  -> {"method": "ngram", "num_speculative_tokens": k,
                                  "prompt_lookup_max": max_ngram (3), "prompt_lookup_min": min_ngram (1)}
  draft-model (or --draft)    -> {"model": <local folder of the draft>, "num_speculative_tokens": k}
  aded, suffix                -> {"method": "custom_class", ...}: this project's proposers (vllm_proposers)
  suffixdecoding              -> {"method": "suffix", "num_speculative_tokens": k}: vLLM's own SuffixDecoding
                                  (arctic-inference; on a CPU build: eval/setup_vllm_suffix.sh)
Other drafters have no vLLM counterpart and are refused with the list above. vLLM's speculation uses a
fixed k: policies other than "constant" are refused too.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from specdec import cpuinfo
from specdec.errors import InputError, SpecDecError

from specdec.backends.vllm_worker import MARK

WORKER = Path(__file__).with_name("vllm_worker.py")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VENV = REPO_ROOT / ".venv-vllm"
VENV_ENV = "SPECDEC_VLLM_VENV"


class VLLMBackendError(SpecDecError):
    """vLLM is not set up, or the worker failed."""


def venv_path(venv: str | os.PathLike | None = None) -> Path:
    return Path(venv or os.environ.get(VENV_ENV) or DEFAULT_VENV).expanduser()


def venv_python(venv: str | os.PathLike | None = None) -> Path:
    return venv_path(venv) / "bin" / "python"


def available(venv: str | os.PathLike | None = None) -> bool:
    return venv_python(venv).is_file()


def has_module(module: str, venv: str | os.PathLike | None = None) -> bool:
    """Whether the vLLM venv's Python imports `module` (checked before a run that needs it)."""
    if not available(venv):
        return False
    r = subprocess.run([str(venv_python(venv)), "-c", f"import {module}"], capture_output=True, timeout=120)
    return r.returncode == 0


VLLM_SUFFIX = "suffixdecoding"  # vLLM's own suffix method (this project's `suffix` drafter is another)
SUFFIX_MODULE = "arctic_inference.suffix_decoding"


def check_ready(drafter: str | None, venv: str | os.PathLike | None = None, flag: str = "--backend vllm") -> None:
    """The vLLM venv is there, and what `drafter` needs in it (vLLM's own suffix method: arctic-inference's
    suffix tree), before anything loads."""
    if not available(venv):
        raise VLLMBackendError(f"{flag} needs the vLLM venv at {venv_path(venv)}; build it with "
                               f"`bash eval/setup_vllm.sh` (a few minutes) or point ${VENV_ENV} at one")
    if drafter == VLLM_SUFFIX and not has_module(SUFFIX_MODULE, venv):
        raise VLLMBackendError(f"{VLLM_SUFFIX} (vLLM's own suffix method) needs arctic-inference's suffix tree in "
                               f"{venv_path(venv)}: `bash eval/setup_vllm_suffix.sh` builds it (about a minute)")


def check_spec(spec, draft: str | None = None) -> None:
    """The check of a speculative setup that runs in vLLM, before anything loads: this engine's drafters by
    their registry (specdec.spec_check), vLLM's own methods (suffixdecoding) by name (they take no
    --drafter-opt), then the mapping to speculative_config (a drafter or policy vLLM has no counterpart for)."""
    from dataclasses import replace

    from specdec.config import DEFAULT_K
    from specdec.spec_check import check_spec as check_engine_spec

    if spec.drafter == VLLM_SUFFIX:
        if spec.drafter_options:
            raise InputError(f"--drafter {VLLM_SUFFIX} (vLLM's own suffix method) takes no --drafter-opt; "
                             f"got {', '.join(sorted(spec.drafter_options))}")
        check_engine_spec(replace(spec, drafter=None))
    else:
        check_engine_spec(spec)
    speculative_config(spec.drafter, spec.k or DEFAULT_K, draft or "", spec.drafter_options, spec.policy)


def speculative_config(drafter: str | None, k: int = 4, draft_path: str | None = None,
                       drafter_options: dict | None = None, policy: str = "constant") -> dict | None:
    """This engine's drafter settings -> vLLM's speculative_config (None = plain decoding)."""
    opts = dict(drafter_options or {})
    if drafter in (None, "", "none", "plain"):
        return None
    if policy not in (None, "constant"):
        raise InputError(f"vLLM drafts a fixed number of tokens; policy {policy!r} has no vLLM counterpart "
                         f"(use --policy constant -k N)")
    if k < 1:
        raise InputError(f"-k must be >= 1 for speculation, got {k}")
    if drafter in ("prompt-lookup", "ngram"):
        return {"method": "ngram", "num_speculative_tokens": int(k),
                "prompt_lookup_max": int(opts.get("max_ngram", 3)), "prompt_lookup_min": int(opts.get("min_ngram", 1))}
    if drafter in ("aded", "suffix"):  # this project's proposers inside vLLM (custom_class); options by environment
        from specdec.backends.vllm_proposers import class_path

        return {"method": "custom_class", "model": class_path(drafter), "num_speculative_tokens": int(k)}
    if drafter == VLLM_SUFFIX:
        return {"method": "suffix", "num_speculative_tokens": int(k)}
    if drafter == "draft-model":
        if not draft_path:
            raise InputError("the draft-model drafter needs --draft MODEL")
        return {"model": str(draft_path), "num_speculative_tokens": int(k)}
    raise InputError(f"drafter {drafter!r} has no vLLM counterpart; with --backend vllm use none, "
                     f"prompt-lookup (vLLM ngram), aded or suffix (this project's proposers) or draft-model (--draft)")


@dataclass
class WorkerRequest:
    model: str
    requests: list[dict] = field(default_factory=list)  # [{"id", "prompt_ids"}] and/or [{"id", "seqs", "n_cont"}]
    dtype: str = "bfloat16"
    max_model_len: int = 2048
    speculative_config: dict | None = None
    max_tokens: int = 256
    stop: list[str] = field(default_factory=list)
    ignore_eos: bool = False  # generate exactly max_tokens (the bench's rule for every engine)
    batch: bool = False
    enforce_eager: bool = False
    seed: int = 0
    temperature: float = 0.0  # sampling through vLLM: 0 = greedy; top_p 1.0 and top_k 0 = off
    top_p: float = 1.0
    top_k: int = 0
    drafter_options: dict = field(default_factory=dict)  # for a custom_class proposer (SPECDEC_DRAFTER_OPTIONS)
    proposer_options: dict = field(default_factory=dict)  # its batch budget (SPECDEC_PROPOSER_OPTIONS; {}: the caller's)
    max_num_seqs: int | None = None  # requests decoded side by side (vLLM's default: 256)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "WorkerRequest":
        return cls(**json.loads(text))


def uses_proposer(spec_cfg: dict | None) -> bool:
    """Whether vLLM's speculative_config names one of this project's proposers (custom_class)."""
    return (spec_cfg or {}).get("method") == "custom_class"


def proposer_env(env: dict, spec_cfg: dict | None, drafter_options: dict | None,
                 proposer_options: dict | None = None) -> dict:
    """`env` for a vLLM process: with one of this project's proposers, this checkout on PYTHONPATH (vLLM imports the
    class by name) and the drafter options in SPECDEC_DRAFTER_OPTIONS (else the caller's own, if any). The batch
    budget's options (`proposer_options`, else SPECDEC_PROPOSER_OPTIONS from the caller's environment) are checked
    here, before vLLM loads."""
    if uses_proposer(spec_cfg):
        from specdec.backends.vllm_proposers import PROPOSER_ENV, budget_config

        if proposer_options:
            env[PROPOSER_ENV] = json.dumps(proposer_options)
        budget_config(env)
        env["PYTHONPATH"] = str(REPO_ROOT)
        if drafter_options:
            env["SPECDEC_DRAFTER_OPTIONS"] = json.dumps(drafter_options)
    return env


def sampling_fields(sampling) -> dict:
    """A SamplingConfig -> the WorkerRequest's sampling fields (None: greedy)."""
    if sampling is None or sampling.greedy:
        return {"temperature": 0.0}
    return {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k,
            "seed": sampling.seed if sampling.seed is not None else 0}


def parse_line(line: str) -> dict | None:
    """A worker stdout line -> its event, or None for vLLM's own log lines."""
    i = line.find(MARK)
    if i < 0:
        return None
    try:
        return json.loads(line[i + len(MARK):])
    except json.JSONDecodeError:
        return None


BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # a CPU where oneDNN multiplies in bfloat16


def worker_dtype(dtype: str, env: dict | None = None) -> tuple[str, str | None]:
    """The dtype vLLM's worker is asked for, given the engine's `dtype`, and a line saying why where it differs.

    Why: vLLM's CPU build multiplies in bfloat16 through oneDNN, which needs AVX512-BF16 or AMX-BF16; on a CPU
    without them it falls back to torch's bf16 linear layers (its log: "Failed to create oneDNN linear"), and on a
    2-core AMD EPYC with AVX2 only (2026-12-07) its start-up warm-up had not finished after 8 minutes, where float32
    started in 72 s (docs/scale.md, "Eval and bench"). A CUDA target ($VLLM_TARGET_DEVICE) and a CPU whose flags are unknown get
    what was asked."""
    device = (os.environ if env is None else env).get("VLLM_TARGET_DEVICE", "cpu")
    flags = cpuinfo.flags()
    if dtype != "bfloat16" or device != "cpu" or not flags or any(f in flags for f in BF16_FLAGS):
        return dtype, None
    return "float32", ("vLLM runs in float32: this CPU has no bfloat16 matrix instructions (AVX512-BF16 or AMX-BF16), "
                       "where vLLM's bfloat16 start-up does not finish in minutes")


def worker_env(venv: str | os.PathLike | None = None, threads_bind: str | None = None,
               kv_cache_gb: int | None = None, base: dict | None = None) -> dict:
    """The environment shared/notes/vllm-cpu.md asks for."""
    env = dict(base if base is not None else os.environ)
    v = venv_path(venv)
    pre = [p for p in (v / "tcmalloc/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", v / "lib/libiomp5.so")
           if p.exists()]
    if pre:
        env["LD_PRELOAD"] = ":".join([str(p) for p in pre] + ([env["LD_PRELOAD"]] if env.get("LD_PRELOAD") else []))
    ncpu = os.cpu_count() or 1
    env.setdefault("VLLM_TARGET_DEVICE", "cpu")
    env["VLLM_CPU_KVCACHE_SPACE"] = str(kv_cache_gb or env.get("VLLM_CPU_KVCACHE_SPACE") or 4)
    env["VLLM_CPU_OMP_THREADS_BIND"] = threads_bind or env.get("VLLM_CPU_OMP_THREADS_BIND") or f"0-{ncpu - 1}"
    env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    env["VIRTUAL_ENV"] = str(v)
    env["PATH"] = f"{v / 'bin'}:{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)  # the worker is run by file path and imports only the stdlib and vLLM
    env.pop("PYTHONHOME", None)
    return env


def run_worker(req: WorkerRequest, venv: str | os.PathLike | None = None, log_path: str | os.PathLike | None = None,
               threads_bind: str | None = None, kv_cache_gb: int | None = None) -> Iterator[dict]:
    """Start the worker and yield its events ("ready", "item"..., "done") as they come."""
    py = venv_python(venv)
    if not py.is_file():
        raise VLLMBackendError(f"--backend vllm needs the vLLM venv at {venv_path(venv)}; build it with "
                               f"`bash eval/setup_vllm.sh` (a few minutes) or point ${VENV_ENV} at one")
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="specdec-vllm-", delete=False) as f:
        f.write(req.to_json())
        req_path = f.name
    log = open(log_path, "a", encoding="utf-8") if log_path else None
    tail: deque[str] = deque(maxlen=400)
    env = proposer_env(worker_env(venv, threads_bind, kv_cache_gb), req.speculative_config, req.drafter_options,
                       req.proposer_options)
    proc = subprocess.Popen([str(py), str(WORKER), req_path], cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1, env=env)
    finished = False
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            ev = parse_line(line)
            if ev is None:
                tail.append(line.rstrip())
                if log:
                    log.write(line)
                    log.flush()
                continue
            if ev.get("event") == "error":
                cause = root_cause(tail)
                raise VLLMBackendError(f"vLLM worker failed: {ev.get('message')}"
                                       + (f"; cause: {cause}" if cause else "")
                                       + (f" (log: {log_path})" if log_path else ""))
            if ev.get("event") == "done":
                finished = True
            yield ev
        rc = proc.wait()
        if rc != 0 or not finished:
            cause = root_cause(tail)
            last = "\n  ".join(list(tail)[-8:])
            raise VLLMBackendError(f"vLLM worker exited with code {rc} before finishing"
                                   + (f"; cause: {cause}" if cause else "")
                                   + (f" (log: {log_path})" if log_path else "") + f"; last lines:\n  {last}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if log:
            log.close()
        os.unlink(req_path)


_GENERIC = ("EngineDeadError", "Engine core initialization failed", "See root cause", "See stack trace")


def root_cause(lines) -> str:
    """The first specific `SomethingError: message` in vLLM's log lines (its own errors only say "see above"),
    with a hint for the usual one on a small machine (not enough free memory for the KV cache)."""
    import re

    for line in lines:
        m = re.search(r"\b([A-Za-z]*Error): (.+)$", line.strip())
        if m and not any(g in line for g in _GENERIC):
            msg = f"{m.group(1)}: {m.group(2).strip()}"
            if "kv cache" in msg.lower() or "memory" in msg.lower():
                msg += " (free memory, or lower the KV cache: VLLM_CPU_KVCACHE_SPACE=2, in GiB; default 4)"
            return msg
    return ""


def item_speed(ev: dict) -> dict:
    """A worker "item" event -> the speed fields the summaries read (same keys as the engine's)."""
    n = len(ev.get("token_ids", []))
    spec = ev.get("spec") or {}
    drafts = spec.get("drafts", 0)
    accepted = spec.get("accepted_tokens", 0)
    return {"new_tokens": n, "decode_s": float(ev.get("gen_s", 0.0)), "drafted": spec.get("draft_tokens", 0),
            "accepted": accepted, "vllm_drafts": drafts,
            # target steps: each commits one token of its own plus the drafts it accepted (steps where the
            # ngram drafter found nothing count too), so tau = tokens / steps, as this engine counts it
            "rounds": max(n - accepted, 1) if n else 0, "compile_s": 0.0, "stop_reason": ev.get("finish_reason", "")}


def shell_exports(venv: str | os.PathLike | None = None) -> str:
    """`export K=V` lines for the worker environment (what changes from the current one), so another program
    of the vLLM venv (e.g. lm-eval's `--model vllm`) runs as the worker does: `eval "$(python -m specdec.backends.vllm_client)"`."""
    import shlex

    env = worker_env(venv)
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items()) if os.environ.get(k) != v)


if __name__ == "__main__":
    print(shell_exports())
