"""The `specdec` command line: a thin shell over the Python API (`specdec.load`, `.generate`, `.stream`).

    specdec generate "Write a haiku about caches." --draft qwen2.5-coder-0.5b-instruct
    specdec chat --drafter prompt-lookup
    specdec bench --target T --draft D --prompts gsm8k:10 --max-new-tokens 128 --json out.json --plot out.png
    specdec models list | pull | path | verify        specdec mlm ...

Defaults come from the config dataclasses in specdec.config. Every SpecDecError is printed as one red line
(exit code 1), never as a traceback.
"""
from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import replace
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from eval.cli import eval_app
from specdec.cli.aded import aded_app
from specdec.cli.check import check_app
from specdec.cli.errors import OneLineGroup, err
from specdec.cli.head import head_app
from mlm_generate.cli import mlm_app
from specdec.cli.models import models_app
from specdec.cli.serve import serve as serve_command
from specdec.cli.options import (
    Target, Draft, DrafterName, Policy, K, PolicyOpts, DrafterOpts, Temperature, TopK, TopP, Seed, MaxNew, Stops,
    Chat, Compile, MaxContext, Threads, CacheDir, Device, Dtype, GuardOpt, Backend, Weights, ExactLen, run_config)
from specdec.config import DEFAULT_TARGET, EngineConfig, RunConfig, SamplingConfig, SpecConfig, StopConfig
from specdec.errors import InputError, SpecDecError
from specdec.spec_check import check_run
from specdec.validate import utf8_text

_E, _S, _T, _P = EngineConfig(), SamplingConfig(), StopConfig(), SpecConfig()
out = Console(highlight=False, soft_wrap=True)  # stdout: generated text (colours only on a terminal)
DRAFT_STYLE = "cyan"

app = typer.Typer(cls=OneLineGroup, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  help="specdec: lossless speculative decoding.")
app.add_typer(models_app, name="models")
app.add_typer(mlm_app, name="mlm")
app.add_typer(eval_app, name="eval")
app.add_typer(aded_app, name="aded")
app.add_typer(head_app, name="head")
app.add_typer(check_app, name="check")
app.command("serve")(serve_command)

def load_for_cli(run: RunConfig):
    """`specdec.load_run(run)` (which checks the whole run before any model loads), with one-off notices on
    stderr."""
    from specdec.api import load_run

    dec = load_run(run)
    dec.say = lambda msg: err.print(f"[dim]{escape(msg)}[/]")
    return dec


def show_piece(console: Console, piece) -> None:
    console.print(Text(piece.text, style=DRAFT_STYLE if piece.origin == "draft" else ""), end="")


def turn_line(st) -> str:
    alpha = f"{st.acceptance_rate:.2f}" if st.drafted else "-"
    return (f"{st.new_tokens} tokens, {st.tokens_per_s:.1f} tok/s, α {alpha}, τ {st.mean_accepted_length:.2f} "
            f"(incl. bonus), {st.target_calls} target calls")


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="Prompt text; - reads stdin.")],
    target: Target = DEFAULT_TARGET, draft: Draft = None, drafter: DrafterName = None, policy: Policy = _P.policy,
    k: K = _P.k, policy_opt: PolicyOpts = None, drafter_opt: DrafterOpts = None,
    temperature: Temperature = _S.temperature, top_k: TopK = _S.top_k, top_p: TopP = _S.top_p, seed: Seed = _S.seed,
    max_new_tokens: MaxNew = _T.max_new_tokens, stop: Stops = None, chat: Chat = None, compile: Compile = _E.compile,
    max_context: MaxContext = _E.max_context, threads: Threads = _E.threads, cache_dir: CacheDir = _E.cache_dir,
    dtype: Dtype = _E.dtype, exact_len: ExactLen = _E.exact_query_len, backend: Backend = _E.backend,
    weights: Weights = _E.weights, guard: GuardOpt = _P.guard, device: Device = _E.device,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (result, stats, config) only.")] = False,
) -> None:
    """Generate a continuation of PROMPT (accepted draft tokens are coloured on a terminal), then a stats line."""
    if prompt == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        prompt = utf8_text(stdin.read() if stdin is not None else sys.stdin.read(), "the prompt on stdin")
    prompt = utf8_text(prompt, "the prompt")
    if not prompt.strip():
        raise InputError("empty prompt: give some text (or - to read stdin)")
    run = run_config(locals())
    if as_json:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON object and nothing else
            dec = load_for_cli(run)
            res = dec.generate(prompt, chat=chat, sampling=run.sampling, stop=run.stop, spec=run.spec)
        used_chat = bool(getattr(dec.tokenizer, "chat_template", None)) if chat is None else chat
        config = {**run.to_dict(), "chat": used_chat}
        sys.stdout.write(json.dumps({**res.to_dict(), "config": config}) + "\n")
        sys.stdout.flush()
        return
    from specdec.stats import GenerationStats

    dec = load_for_cli(run)
    stats = GenerationStats()
    for piece in dec.stream(prompt, chat=chat, sampling=run.sampling, stop=run.stop, spec=run.spec, stats=stats):
        show_piece(out, piece)
    out.print()
    legend = f" ([{DRAFT_STYLE}]coloured[/] = accepted draft tokens)" if out.is_terminal and stats.drafted else ""
    err.print(f"[dim]{escape(stats.summary())}, stop: {stats.stop_reason}[/]{legend}")


def chat_loop(dec, read: Callable[[], str], console: Console, *, sampling: SamplingConfig = _S,
              stop: StopConfig = _T, spec: SpecConfig | None = None) -> list[dict]:
    """The interactive loop: `read()` returns the next user line (EOFError ends). /reset clears the history,
    /quit exits. Returns the history (list of {"role", "content"}) at exit."""
    from specdec.stats import GenerationStats

    history: list[dict] = []
    while True:
        try:
            line = utf8_text(read(), "that line")
        except EOFError:
            console.print()
            break
        except (UnicodeDecodeError, InputError) as e:  # keep the session and its history
            console.print(f"[red]error: {escape(str(e) if isinstance(e, InputError) else 'that line is not UTF-8 text')}[/]")
            continue
        cmd = line.strip()
        if not cmd:
            continue
        if cmd in ("/quit", "/exit"):
            break
        if cmd == "/reset":
            history.clear()
            console.print("[dim]history cleared[/]")
            continue
        if cmd.startswith("/"):
            console.print(f"[yellow]unknown command {escape(cmd)}; commands: /reset, /quit[/]")
            continue
        history.append({"role": "user", "content": line})
        stats, reply = GenerationStats(), []
        try:
            for piece in dec.stream(list(history), chat=True, sampling=sampling, stop=stop, spec=spec, stats=stats):
                show_piece(console, piece)
                reply.append(piece.text)
        except SpecDecError as e:  # e.g. the history outgrew the context: keep the session alive
            history.pop()
            console.print(f"\n[red]error: {escape(' '.join(str(e).split()))}[/] [dim](/reset clears the history)[/]")
            continue
        except KeyboardInterrupt:
            console.print("\n[dim]interrupted[/]")
        history.append({"role": "assistant", "content": "".join(reply)})
        console.print()
        console.print(f"[dim]{escape(turn_line(stats))}[/]")
    return history


def check_chat_ready(dec, target: str) -> None:
    """What a turn needs beyond the options (those, the policy included, were checked by `check_run` before
    the model loaded), checked before the session starts: a chat template that renders a user turn."""
    from specdec.prompt import encode_prompt

    if not getattr(dec.tokenizer, "chat_template", None):
        raise InputError(f"{target}'s tokenizer has no chat template, so it cannot chat; for plain-text "
                         f"continuation use `specdec generate --no-chat TEXT`")
    try:
        encode_prompt(dec.tokenizer, [{"role": "user", "content": "hi"}], chat=True)
    except Exception as e:  # noqa: BLE001 - a template that raises: one line, before the session
        raise InputError(f"{target}'s chat template fails on a user turn ({type(e).__name__}: {e})") from None


@app.command()
def chat(
    target: Target = DEFAULT_TARGET, draft: Draft = None, drafter: DrafterName = None, policy: Policy = _P.policy,
    k: K = _P.k, policy_opt: PolicyOpts = None, drafter_opt: DrafterOpts = None,
    temperature: Temperature = _S.temperature, top_k: TopK = _S.top_k, top_p: TopP = _S.top_p, seed: Seed = _S.seed,
    max_new_tokens: MaxNew = _T.max_new_tokens, stop: Stops = None, compile: Compile = _E.compile,
    max_context: MaxContext = _E.max_context, threads: Threads = _E.threads, cache_dir: CacheDir = _E.cache_dir,
    dtype: Dtype = _E.dtype, exact_len: ExactLen = _E.exact_query_len, backend: Backend = _E.backend,
    weights: Weights = _E.weights, guard: GuardOpt = _P.guard, device: Device = _E.device,
) -> None:
    """Chat with the target (chat template, history kept). /reset clears the history, /quit or EOF exits."""
    run = run_config(locals())
    dec = load_for_cli(run)
    check_chat_ready(dec, target)
    out.print(f"[dim]{escape(target)}{' + ' + escape(run.spec.drafter) if run.spec.drafter else ''}: "
              f"/reset clears the history, /quit exits; [{DRAFT_STYLE}]coloured[/] = accepted draft tokens[/]")
    chat_loop(dec, lambda: out.input("[bold green]> [/]"), out, sampling=run.sampling, stop=run.stop, spec=run.spec)


@app.command()
def bench(
    prompts: Annotated[str, typer.Option("--prompts", help="spec_bench:N, gsm8k:N or a .txt/.jsonl file.")],
    target: Target = DEFAULT_TARGET, draft: Draft = None,
    setup: Annotated[Optional[list[str]], typer.Option(
        "--setup", metavar="NAME=DRAFTER[:POLICY[:K]][,KEY=VALUE...]",
        help="A speculative setup (repeatable); KEY=VALUE are drafter options, policy.KEY=VALUE policy options, "
             "backend=/weights= the setup's own runner (it then gets its own plain row, plain@RUNNER). "
             "Default: draft-model (with --draft) and prompt-lookup, K=-k.")] = None,
    k: K = _P.k, per_category: Annotated[bool, typer.Option("--per-category", help="spec_bench: N per category.")] = False,
    max_new_tokens: MaxNew = _T.max_new_tokens, temperature: Temperature = _S.temperature,
    top_k: TopK = _S.top_k, top_p: TopP = _S.top_p, seed: Seed = _S.seed, chat: Chat = None,
    compile: Compile = _E.compile,
    hf: Annotated[bool, typer.Option("--hf/--no-hf", help="Also time HF generate (and assisted with --draft) on "
                                     "the bf16 models.")] = False,
    stop_at_eos: Annotated[bool, typer.Option(
        "--stop-at-eos/--ignore-eos", help="Default --ignore-eos: every row generates exactly --max-new-tokens "
        "(the same work timed everywhere).")] = False,
    data_dir: Annotated[Optional[str], typer.Option(
        "--data-dir", help="Datasets folder (default: $SPECDEC_DATA, else ../shared/data).")] = None,
    json_out: Annotated[Optional[str], typer.Option("--json", help="Write the report here, after every setup.")] = None,
    plot_out: Annotated[Optional[str], typer.Option("--plot", help="Also draw tokens/s per setup to this PNG.")] = None,
    max_context: Annotated[Optional[int], typer.Option(
        "--max-context", help="KV cache length (default: the longest prompt + max new tokens + 64, rounded up to 256).")] = None,
    threads: Threads = _E.threads, cache_dir: CacheDir = _E.cache_dir,
    dtype: Dtype = _E.dtype, exact_len: ExactLen = _E.exact_query_len, backend: Backend = _E.backend,
    weights: Weights = _E.weights, device: Device = _E.device,
    vllm: Annotated[Optional[list[str]], typer.Option(
        "--vllm", metavar="SETUP",
        help="Also time vLLM (.venv-vllm, $SPECDEC_VLLM_VENV) on the same prompt ids (repeatable): plain, "
             "ngram (prompt lookup, K=-k), draft (--draft, K=-k), aded or suffix (this project's drafters as vLLM "
             "proposers, K=-k, with their batch budget; aded-nobudget: every drafted token verified); reported as "
             "vllm_<SETUP>. Sampling options apply.")] = None,
    llamacpp: Annotated[Optional[list[str]], typer.Option(
        "--llamacpp", metavar="SETUP",
        help="Also time llama.cpp's own decoding through llama-server on the same prompt ids and GGUF "
             "(repeatable): plain, draft (--draft, K=-k), ngram, ngram-mod; reported as llamacpp_<SETUP>.")] = None,
    llama_server: Annotated[Optional[str], typer.Option(
        "--llama-server", help="llama-server binary (default: $SPECDEC_LLAMA_SERVER, else on PATH).")] = None,
    cost_curve: Annotated[bool, typer.Option(
        "--cost-curve", help="Also time one verification pass of 1..64 rows on each of this engine's runners "
        "(the report's cost_curves; a setup with backend=llamacpp adds llama.cpp's).")] = False,
    interleave: Annotated[bool, typer.Option(
        "--interleave/--by-setup", help="This engine's setups and the --llamacpp rows prompt by prompt (each "
        "prompt through every setup before the next: a machine whose speed drifts slows all alike; default) or "
        "setup by setup. vLLM and HF rows run after either way.")] = True,
    repeats: Annotated[int, typer.Option(
        "--repeats", min=1, help="Interleaved: run each prompt N times through every setup, the order rotating "
        "each time, and keep each setup's median-time run (a host whose speed drifts within minutes).")] = 1,
) -> None:
    """Time plain decoding and speculative setups side by side on the same prompts, with llama.cpp, vLLM and HF
    rows when asked; the JSON report is rewritten after every setup."""
    from specdec import bench as B
    from specdec.bench import pipeline
    from specdec.progress import Progress

    specs = [B.parse_setup(s, default_k=k) for s in setup] if setup else B.default_setups(bool(draft), k)
    run = run_config({**locals(), "drafter": "none", "max_context": max_context or _E.max_context})
    check_run(run)  # model names, lengths: before any prompt is read
    from specdec.bench import vllm as bench_vllm

    plan = pipeline.BenchPlan(
        target=target, draft=draft, prompts=[], engine=run.engine, setups=specs, sampling=run.sampling,
        stop=replace(run.stop, ignore_eos=not stop_at_eos), k=k, chat=chat, hf=hf,
        vllm=bench_vllm.parse_setups(vllm or []), llamacpp=[s.strip().lower() for s in (llamacpp or [])],
        llama_server=llama_server, json_out=json_out, plot_out=plot_out, cost_curve=cost_curve, interleave=interleave,
        repeats=repeats,
        config_extra={"prompts": prompts, "per_category": per_category, "max_context_given": max_context is not None,
                      "data_dir": str(B.prompts.resolve_data_dir(data_dir).resolve())})
    pipeline.check_plan(plan)  # output paths, setups, engines: refused before any prompt or model is read
    plan.prompts = B.load_prompts(prompts, data_dir, per_category)
    if not plan.prompts:
        raise InputError(f"--prompts {prompts!r}: no prompts in it")
    say = lambda msg: err.print(f"[dim]{escape(msg)}[/]")  # noqa: E731
    with Progress(err, every_s=30) as bar:
        tasks: dict[str, int] = {}

        def progress(name, i, n):
            if name not in tasks:
                tasks[name] = bar.add(f"{name}: warm-up + {n} prompts", total=n + 1)
            bar.advance(tasks[name], 1)
            if i == n:
                bar.done(tasks[name])

        report = pipeline.run(plan, say=bar.say if not bar.live else say, progress=progress)
    out.print(B.render_table(report))
    if "per_category" in report:
        out.print(B.render_category_table(report))
    if "cost_curves" in report:
        out.print(B.render_cost_table(report))
    if json_out:
        err.print(f"[dim]wrote {escape(json_out)}[/]")
    if plot_out:
        B.plot(report, plot_out)
        err.print(f"[dim]wrote {escape(plot_out)}[/]")


@app.command("bench-plot")
def bench_plot(
    report_json: Annotated[str, typer.Argument(metavar="JSON", help="A report written by `specdec bench --json`.")],
    png: Annotated[str, typer.Argument(metavar="PNG")],
) -> None:
    """Draw tokens/s per setup from a benchmark report."""
    from specdec import bench as B

    report = B.read_report(report_json)
    B.plot(report, png)
    out.print(B.render_table(report))
    err.print(f"[dim]wrote {escape(png)}[/]")


if __name__ == "__main__":
    app()
