"""The options shared by the `specdec` commands, declared once (defaults come from specdec.config), and the one
function that turns a command's options into the run's config objects (`run_config`)."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from specdec.config import (DEFAULT_TARGET, EngineConfig, RunConfig, SamplingConfig, SpecConfig, StopConfig,
                            override, parse_kv)

# option name -> config field, where the two differ (every other option is named as its field)
FIELD_OF = {"exact_len": "exact_query_len", "stop": "stop_strings", "drafter_opt": "drafter_options",
            "policy_opt": "policy_options"}


def run_config(options: dict) -> RunConfig:
    """The RunConfig a command's options describe (`options`: its parameters by name, e.g. `locals()`; names that
    are no config field, like the prompt, are not read). With --draft and no --drafter the drafter is
    draft-model; --drafter none is plain decoding. Each config checks its own values here; the whole run is
    checked (`check_run`) by the load, before any model loads."""
    configs = (SpecConfig(), EngineConfig(), SamplingConfig(), StopConfig())
    fields = {f for cfg in configs for f in cfg.__dataclass_fields__}
    given = {FIELD_OF.get(k, k): v for k, v in options.items()}
    given["drafter_options"] = parse_kv(given.get("drafter_options"), "--drafter-opt")
    given["policy_options"] = parse_kv(given.get("policy_options"), "--policy-opt")
    given["stop_strings"] = tuple(given.get("stop_strings") or ())
    if given.get("drafter") is None and options.get("draft"):
        given["drafter"] = "draft-model"
    values = {k: v for k, v in given.items() if k in fields and (v is not None or k in ("drafter",))}
    spec, engine, sampling, stop = override(configs, values)
    return RunConfig(target=options.get("target") or DEFAULT_TARGET, draft=options.get("draft"), spec=spec,
                     engine=engine, sampling=sampling, stop=stop)


Target = Annotated[str, typer.Option("--target", "-t", help="Target model: zoo name, local folder or hub id.")]
Draft = Annotated[Optional[str], typer.Option("--draft", "-d", help="Draft model for the draft-model drafter.")]
DrafterName = Annotated[Optional[str], typer.Option(
    "--drafter", help="Drafter (none = plain decoding). Default: draft-model with --draft, else none.")]
Policy = Annotated[str, typer.Option("--policy", help="Candidate-length policy.")]
K = Annotated[Optional[int], typer.Option("-k", "--k", help=(
    "Draft tokens per round: the first (or fixed) length, default 4; for specdecpp its longest draft (default 20)."))]
PolicyOpts = Annotated[Optional[list[str]], typer.Option(
    "--policy-opt", metavar="KEY=VALUE", help="Policy option, e.g. threshold=0.3 (repeatable).")]
DrafterOpts = Annotated[Optional[list[str]], typer.Option(
    "--drafter-opt", metavar="KEY=VALUE", help="Drafter option, e.g. max_ngram=4 (repeatable).")]
Temperature = Annotated[float, typer.Option("--temperature", help="0 = greedy.")]
TopK = Annotated[int, typer.Option("--top-k", help="0 = off.")]
TopP = Annotated[float, typer.Option("--top-p", help="1.0 = off.")]
Seed = Annotated[Optional[int], typer.Option("--seed")]
MaxNew = Annotated[int, typer.Option("--max-new-tokens", "-n")]
Stops = Annotated[Optional[list[str]], typer.Option("--stop", help="Stop string (repeatable).")]
Chat = Annotated[Optional[bool], typer.Option(
    "--chat/--no-chat", help="Use the chat template (default: when the tokenizer has one).")]
Compile = Annotated[bool, typer.Option("--compile/--no-compile", help="torch.compile the decode/verify steps.")]
MaxContext = Annotated[int, typer.Option("--max-context", help="KV cache length.")]
Threads = Annotated[Optional[int], typer.Option("--threads", help="torch threads (default: torch's).")]
CacheDir = Annotated[Optional[str], typer.Option("--cache-dir", help="Model zoo cache folder.")]
Device = Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N (the torch runner; bf16 weights on CUDA).")]
Dtype = Annotated[str, typer.Option("--dtype", help="bfloat16 | float32 | float16.")]
GuardOpt = Annotated[bool, typer.Option(
    "--guard/--no-guard", help="Switch speculation off while it loses time against plain decoding (measured "
    "costs; output unchanged).")]
Backend = Annotated[str, typer.Option(
    "--backend", help="Runner: auto (llamacpp when llama-cpp-python is installed and the model has a GGUF, else "
    "torch), torch, llamacpp.")]
Weights = Annotated[str, typer.Option(
    "--weights", help="torch runner weights: auto (int4 for a zoo GGUF model), bf16, int8, int4 (built from the "
    "GGUF's own codes, cached).")]
ExactLen = Annotated[Optional[int], typer.Option(
    "--exact-len", metavar="N", help="Bit-exact mode: pad every target pass to N rows, so greedy speculation is "
    "bit-identical to plain decoding (in bf16 too); drafts are capped to N-1 tokens.")]
