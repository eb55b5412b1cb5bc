"""The options shared by the `specdec` commands, declared once (defaults come from specdec.config)."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

Target = Annotated[str, typer.Option("--target", "-t", help="Target model: zoo name, local folder or hub id.")]
Draft = Annotated[Optional[str], typer.Option("--draft", "-d", help="Draft model for the draft-model drafter.")]
DrafterName = Annotated[Optional[str], typer.Option(
    "--drafter", help="Drafter (none = plain decoding). Default: draft-model with --draft, else none.")]
Policy = Annotated[str, typer.Option("--policy", help="Candidate-length policy.")]
K = Annotated[int, typer.Option("-k", "--k", help="(Initial) draft tokens per round.")]
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
