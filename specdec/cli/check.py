"""`specdec check lossless`: the losslessness check on your model, weights and machine (specdec.check)."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from specdec.cli.errors import OneLineGroup
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from specdec.cli.options import Backend, CacheDir, Draft, Dtype, ExactLen, K, MaxContext, Target, Threads, Weights
from specdec.config import DEFAULT_TARGET, EngineConfig, parse_kv
from specdec.errors import InputError

check_app = typer.Typer(cls=OneLineGroup, no_args_is_help=True, help="Checks you can run on your own models and machine.")
err = Console(stderr=True, highlight=False, soft_wrap=True)
_E = EngineConfig()

STYLE = {"identical": "green", "pass": "green", "differs": "bold red", "fail": "bold red", "failed": "red",
         "vacuous": "yellow", "skipped": "dim"}


def scoped_options(items: list[str] | None, flag: str) -> dict[str, dict]:
    """["aded.store=empty", "specdecpp.threshold=0.3"] -> {"aded": {"store": "empty"}, "specdecpp": {...}}."""
    out: dict[str, dict] = {}
    for item in items or []:
        name, dot, rest = item.partition(".")
        if not dot or not name or "=" not in rest:
            raise InputError(f"{flag} {item!r}: expected NAME.KEY=VALUE, e.g. aded.store=empty")
        out.setdefault(name, {}).update(parse_kv([rest], flag))
    return out


@check_app.command("lossless")
def lossless(
    target: Target = DEFAULT_TARGET, draft: Draft = None,
    prompts: Annotated[int, typer.Option("--prompts", help="Random prompts for the greedy check.")] = 50,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n")] = 24,
    samples: Annotated[int, typer.Option("--samples", help="Sampling runs per drafter (0 = no sampling test).")] = 600,
    top_k: Annotated[int, typer.Option("--top-k", help="The sampling test's support per step.")] = 6,
    temperature: Annotated[float, typer.Option("--temperature", help="The sampling test's temperature.")] = 1.0,
    alpha: Annotated[float, typer.Option("--alpha", help="A chi-square p-value below this fails.")] = 1e-3,
    k: K = 4, seed: Annotated[int, typer.Option("--seed")] = 0,
    drafter: Annotated[Optional[list[str]], typer.Option(
        "--drafter", help="Only this drafter (repeatable; default: every registered one).")] = None,
    policy: Annotated[Optional[list[str]], typer.Option(
        "--policy", help="Only this policy (repeatable; default: every registered one).")] = None,
    drafter_opt: Annotated[Optional[list[str]], typer.Option(
        "--drafter-opt", metavar="DRAFTER.KEY=VALUE", help="e.g. aded.store=empty, mlm.mlm=FOLDER.")] = None,
    policy_opt: Annotated[Optional[list[str]], typer.Option(
        "--policy-opt", metavar="POLICY.KEY=VALUE", help="e.g. specdecpp.head=FILE.")] = None,
    json_out: Annotated[Optional[str], typer.Option("--json", help="Write the report here, after every row.")] = None,
    backend: Backend = _E.backend, weights: Weights = _E.weights, dtype: Dtype = _E.dtype,
    exact_len: ExactLen = _E.exact_query_len, max_context: MaxContext = _E.max_context, threads: Threads = _E.threads,
    cache_dir: CacheDir = _E.cache_dir,
) -> None:
    """Every registered drafter x policy against plain decoding: greedy identity on random prompts, and a
    chi-square test of speculative sampling per drafter. Exit code 1 if any row differs or fails."""
    import specdec
    from specdec.check.lossless import LosslessConfig, run_check
    from specdec.jsonl import write_json_atomic
    from specdec.validate import check_output_path

    cfg = LosslessConfig(prompts=prompts, max_new_tokens=max_new_tokens, samples=samples, top_k=top_k,
                         temperature=temperature, alpha=alpha, k=k, seed=seed, drafters=tuple(drafter or ()),
                         policies=tuple(policy or ()),
                         drafter_options=scoped_options(drafter_opt, "--drafter-opt"),
                         policy_options=scoped_options(policy_opt, "--policy-opt"))
    check_output_path(json_out, "--json")
    engine = EngineConfig(dtype=dtype, max_context=max_context, threads=threads, cache_dir=cache_dir,
                          exact_query_len=exact_len, backend=backend, weights=weights)
    dec = specdec.load(target, draft, drafter="none", engine=engine)
    say = lambda msg: err.print(f"[dim]{escape(msg)}[/]")  # noqa: E731
    dec.say = say
    rep = run_check(dec, cfg, (lambda r: write_json_atomic(json_out, r)) if json_out else (lambda r: None), say)
    Console(highlight=False).print(render(rep))
    s = rep["summary"]
    verdict = "[bold green]lossless[/]" if s["passed"] else "[bold red]NOT lossless[/]"
    err.print(f"{verdict}: {s['checked']} rows checked, {s['problems']} differing or failing; "
              f"greedy {s['counts']['greedy']}, sampling {s['counts']['sampling']}")
    if not s["passed"]:
        raise typer.Exit(1)


def render(rep: dict) -> Table:
    t = Table(title=f"lossless check: {rep['config']['runner']} runner ({rep['config']['weights']})")
    for col in ("test", "drafter", "policy", "status", "detail"):
        t.add_column(col)
    for part in ("greedy", "sampling"):
        for r in rep[part]:
            st = r["status"]
            if st in ("skipped", "failed"):
                detail = r["reason"]
            elif part == "greedy":
                detail = (f"{r['identical_prompts']}/{r['prompts']} prompts identical; "
                          f"{r['accepted']}/{r['drafted']} drafted accepted")
            else:
                detail = f"p = {r['pvalue']:.3g} over {r['cells']} cells, {r['samples']} samples"
                if r.get("low_power"):
                    detail += " (low power: raise --samples or --temperature)"
            t.add_row(part, r["drafter"], r["policy"], f"[{STYLE.get(st, '')}]{st}[/]", escape(detail))
    return t
