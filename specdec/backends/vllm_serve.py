"""`specdec serve`: vLLM's OpenAI-compatible server with this project's drafters, one command.

    specdec serve --drafter aded -k 4                      # the bundled 1.5B, ADED inside vLLM, port 8000
    curl localhost:8000/v1/completions -d '{"model": "qwen2.5-coder-1.5b-instruct", "prompt": "def f(", "max_tokens": 64}'

What it runs is vLLM's OpenAI server (`python -m vllm.entrypoints.openai.api_server --model MODEL_DIR
--speculative-config JSON ...`, what `vllm serve` runs) from vLLM's venv (eval/setup_vllm.sh), with
the environment shared/notes/vllm-cpu.md asks for, this checkout on PYTHONPATH (vLLM imports the proposer class
by name) and the drafter options in SPECDEC_DRAFTER_OPTIONS. `--print` shows the command instead of running it,
so it can be copied into a service file.
"""
from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from specdec.config import DEFAULT_K, RunConfig
from specdec.errors import InputError


SERVER_MODULE = "vllm.entrypoints.openai.api_server"


@dataclass(frozen=True)
class ServeConfig:
    """How the server listens and how much it may hold (vLLM's own options)."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_model_len: int = 4096
    max_num_seqs: int = 32  # requests decoded side by side
    name: str | None = None  # the model name clients send (default: the zoo name or folder given)

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise InputError(f"--port must be 1..65535, got {self.port!r}")
        if self.max_model_len < 16 or self.max_num_seqs < 1:
            raise InputError(f"need --max-model-len >= 16 and --max-num-seqs >= 1, got {self.max_model_len}, "
                             f"{self.max_num_seqs}")


def serve_command(run: RunConfig, serve: ServeConfig = ServeConfig(), venv: str | os.PathLike | None = None,
                  resolve=None) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of the `vllm serve` process for `run` (target, draft, drafter, k, drafter options,
    dtype (`vllm_client.worker_dtype`), threads). `resolve` maps a zoo name to its folder (default: the zoo's)."""
    from specdec.backends import vllm_client as V

    if resolve is None:
        from specdec.zoo import resolve
    spec = run.spec
    draft_dir = resolve(run.draft, run.engine.cache_dir) if run.draft else None
    spec_cfg = V.speculative_config(spec.drafter, spec.k or DEFAULT_K, draft_dir, spec.drafter_options, spec.policy)
    model_dir = resolve(run.target, run.engine.cache_dir)
    # `vllm serve`'s own server module: the `vllm` script of vllm-cpu 0.32 fails before it starts (it asks the package
    # metadata for "vllm", installed as "vllm_cpu"); `python -m` of the module runs the same server
    threads = f"0-{run.engine.threads - 1}" if run.engine.threads else None
    env = V.proposer_env(V.worker_env(venv, threads), spec_cfg, spec.drafter_options)
    argv = [str(V.venv_python(venv)), "-m", SERVER_MODULE, "--model", str(model_dir),
            "--served-model-name", serve.name or run.target, "--host", serve.host, "--port", str(serve.port),
            "--dtype", V.worker_dtype(run.engine.dtype, env)[0], "--max-model-len", str(serve.max_model_len),
            "--max-num-seqs", str(serve.max_num_seqs)]
    if spec_cfg:
        argv += ["--speculative-config", json.dumps(spec_cfg)]
    return argv, env


def shell_line(argv: list[str], env: dict[str, str]) -> str:
    """The command as one shell line: the environment it changes, then argv."""
    changed = {k: v for k, v in env.items() if os.environ.get(k) != v and k not in ("PATH", "VIRTUAL_ENV")}
    return " ".join([*(f"{k}={shlex.quote(v)}" for k, v in sorted(changed.items())), *map(shlex.quote, argv)])


def exec_server(argv: list[str], env: dict[str, str]) -> None:
    """Replace this process with the server (its signals and exit status are the server's)."""
    if not Path(argv[0]).is_file():
        raise InputError(f"no vLLM at {argv[0]}; build its venv with `bash eval/setup_vllm.sh` (a few minutes)")
    os.execve(argv[0], argv, env)
