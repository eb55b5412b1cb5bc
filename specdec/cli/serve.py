"""`specdec serve`: option parsing only; the command is built in specdec/backends/vllm_serve.py."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from specdec.cli.options import (K, CacheDir, Draft, DrafterName, DrafterOpts, Dtype, Target, Threads, run_config)
from specdec.config import DEFAULT_TARGET, EngineConfig

_E = EngineConfig()


def serve(
    target: Target = DEFAULT_TARGET, draft: Draft = None, drafter: DrafterName = None, k: K = None,
    drafter_opt: DrafterOpts = None, threads: Threads = _E.threads, cache_dir: CacheDir = _E.cache_dir,
    dtype: Dtype = _E.dtype,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    max_model_len: Annotated[int, typer.Option("--max-model-len", help="Longest prompt + answer, in tokens.")] = 4096,
    max_num_seqs: Annotated[int, typer.Option("--max-num-seqs", help="Requests decoded side by side.")] = 32,
    name: Annotated[Optional[str], typer.Option("--name", help="Model name clients send (default: --target).")] = None,
    venv: Annotated[Optional[str], typer.Option("--venv", help="vLLM's venv (default: .venv-vllm, "
                                                "$SPECDEC_VLLM_VENV).")] = None,
    print_only: Annotated[bool, typer.Option("--print", help="Print the command instead of running it.")] = False,
) -> None:
    """Serve the target through vLLM's OpenAI-compatible server, drafting with this project's drafters
    (--drafter aded | suffix | prompt-lookup (vLLM's ngram) | draft-model (--draft) | none), or with vLLM's own
    suffix method (--drafter suffixdecoding)."""
    from specdec.backends import vllm_client
    from specdec.backends.vllm_serve import ServeConfig, exec_server, serve_command, shell_line

    run = run_config({**locals(), "policy": "constant"})
    vllm_client.check_spec(run.spec, run.draft)
    cfg = ServeConfig(host=host, port=port, max_model_len=max_model_len, max_num_seqs=max_num_seqs, name=name)
    argv, env = serve_command(run, cfg, venv)
    if print_only:
        typer.echo(shell_line(argv, env))
        return
    vllm_client.check_ready(run.spec.drafter, venv, flag="specdec serve")
    exec_server(argv, env)
