"""`specdec aded ...`: build ADED tri-gram stores and measure the CPU tree budget.

    specdec aded build --from gsm8k --tokenizer qwen2.5-coder-1.5b-instruct --out stores/gsm8k.safetensors
    specdec aded build --from notes.txt --from data.jsonl --tokenizer ./my-model --out my.safetensors
    specdec aded cost --model qwen2.5-coder-1.5b-instruct --store stores/gsm8k.safetensors --out cost.json
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator, Optional

import typer

from specdec.cli.errors import OneLineGroup

from specdec.config import DEFAULT_TARGET
from specdec.errors import DataError, InputError
from specdec.jsonl import write_json_atomic
from specdec.drafters.aded.corpus import DATASETS, data_dir, iter_texts, load_tokenizer  # noqa: F401  (re-exported)
from specdec.bench.aded_cost import measure as _measure
from specdec.validate import check_output_path, set_threads

aded_app = typer.Typer(cls=OneLineGroup, help="ADED drafter: build tri-gram stores, measure the tree budget.", no_args_is_help=True)
@aded_app.command("build")
def build(
    sources: list[str] = typer.Option(..., "--from", help="files, folders, or datasets: gsm8k (train), spec_bench, stdlib (this Python's standard library sources) (repeatable)"),
    tokenizer: str = typer.Option(DEFAULT_TARGET, help="zoo name or local model folder whose tokenizer to use"),
    out: Path = typer.Option(..., help="the store file to write (.safetensors)"),
    top_k: int = typer.Option(12, help="successors kept per token pair"),
    min_count: int = typer.Option(1, help="drop tri-grams seen fewer times"),
    bigrams: bool = typer.Option(True, help="also store bigram successors (the backoff for unknown pairs)"),
    data: Optional[Path] = typer.Option(None, "--data-dir", help="folder with gsm8k/ and spec_bench/"),
) -> None:
    """Count tri-grams of a corpus and save a top-k store."""
    from rich.console import Console

    from specdec.drafters.aded.store import TrigramStore, tokenizer_fingerprint

    console = Console(stderr=True)
    check_output_path(str(out), "--out", ".safetensors")  # before anything is read or tokenised
    if top_k < 1 or min_count < 1:
        raise InputError(f"--top-k and --min-count must be >= 1, got {top_k}, {min_count}")
    for s in sources:
        if s not in DATASETS and not Path(s).expanduser().exists():
            raise DataError(f"--from {s!r}: not a file, folder or dataset ({', '.join(DATASETS)})")
    texts = [t for s in sources for t in iter_texts(s, data) if t.strip()]
    if not texts:
        raise DataError(f"--from {', '.join(sources)}: no text to count (empty files?); a store needs a corpus")
    tok = load_tokenizer(tokenizer)
    t0 = time.perf_counter()

    def streams() -> Iterator[list[int]]:
        for i in range(0, len(texts), 256):
            yield from tok(texts[i: i + 256], add_special_tokens=False)["input_ids"]

    meta = {"tokenizer": tokenizer, "tokenizer_fingerprint": tokenizer_fingerprint(tok), "sources": sources}
    store = TrigramStore.build(streams(), len(tok), top_k=top_k, bigrams=bigrams, min_count=min_count,
                               progress=True, total=len(texts), meta=meta)
    report = store.save(out)
    report["build_s"] = round(time.perf_counter() - t0, 2)
    console.print(f"[green]saved[/green] {out}: {report['pairs']:,} pairs + {report['bigram_contexts']:,} bigram "
                  f"contexts, {report['entries']:,} successors, {report['file_bytes'] / 2**20:.1f} MiB, "
                  f"from {report['corpus_tokens']:,} tokens in {report['build_s']}s")
    typer.echo(json.dumps(report))


@aded_app.command("cost")
def cost(
    model: str = typer.Option(DEFAULT_TARGET, help="target: zoo name or local folder"),
    store: Optional[Path] = typer.Option(None, help="ADED store for the acceptance replay (default: empty)"),
    max_n: int = typer.Option(64, help="time forwards over n = 1..max_n tokens"),
    ns: Optional[str] = typer.Option(None, help="comma-separated n values instead of 1..max_n"),
    context: int = typer.Option(256, help="committed tokens before the timed forward"),
    stat: str = typer.Option("min", help="min (robust to other load) or median over the repeats"),
    repeats: int = typer.Option(5),
    compile: bool = typer.Option(False, help="time the compiled runner (inductor; ~1 min warm-up per bucket)"),
    threads: Optional[int] = typer.Option(None, help="torch threads (default: torch's)"),
    dataset: str = typer.Option("gsm8k", help="replay prompts: gsm8k (test, first N) | spec_bench (N spread over categories)"),
    prompts: int = typer.Option(3, help="prompts whose plain greedy outputs are the replay references"),
    max_new_tokens: int = typer.Option(64),
    budgets: str = typer.Option("1:1,2:2,3:3,4:4,3:2,7:3,7:4,11:4,11:5,15:4,15:5,23:5,31:5,47:5,63:5",
                                help="nodes:depth pairs to replay"),
    out: Path = typer.Option(Path("aded-cost.json"), help="JSON report"),
    data: Optional[Path] = typer.Option(None, "--data-dir"),
    reuse: Optional[Path] = typer.Option(None, help="take forward times and references from an earlier report"),
) -> None:
    """Measure verify cost per tree size and replayed acceptance; rank (nodes, depth) by tokens/s."""
    import torch
    from rich.console import Console

    from specdec.drafters.aded.store import TrigramStore, check_tokenizer
    from specdec.drafters.aded.tune import TRIGRAM_TREE, choose_budget, replay

    console = Console(stderr=True)
    set_threads(threads)
    pairs = _budgets(budgets)  # every option checked before the model loads
    if ns is not None:
        _positive_ints(ns, "--ns")
    if stat not in ("min", "median"):
        raise InputError(f"--stat must be min or median, got {stat!r}")
    if max_n < 1 or repeats < 1 or context < 1 or prompts < 1 or max_new_tokens < 1:
        raise InputError("--max-n, --repeats, --context, --prompts and --max-new-tokens must be >= 1")
    check_output_path(str(out), "--out", ".json")
    if store and not Path(store).is_file():
        raise DataError(f"--store {store}: no such store file")
    try:
        if reuse:
            prev = json.loads(Path(reuse).read_text())
            tok = load_tokenizer(model)
            t = {int(n): ms / 1e3 for n, ms in prev["forward_ms"].items()}
            ids, refs = prev["replay_data"]["prompts"], prev["replay_data"]["references"]
            vocab = len(tok)
            compile, context, repeats, stat = prev["compile"], prev["context"], prev["repeats"], prev.get("stat", "median")
            dataset, prompts, max_new_tokens = prev["dataset"], prev["prompts"], prev["max_new_tokens"]
        else:
            t, ids, refs, vocab, tok = _measure(model, compile, context, max_n, ns, pairs, repeats, dataset, prompts,
                                                max_new_tokens, data, console, stat)
        if store:
            st = TrigramStore.load(store)
            check_tokenizer(st.meta, tok, store)
        else:
            st = TrigramStore.empty(vocab)
        acc = [replay(st, TRIGRAM_TREE, ids, refs, n, d) for n, d in pairs]
        ranked = choose_budget(t, acc)
        t = {n: t[n] for n in sorted(t)}
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise DataError(f"--reuse {reuse}: not a `specdec aded cost` report ({type(e).__name__}: {e})") from None
    report = {"model": model, "compile": compile, "threads": torch.get_num_threads(), "context": context,
              "repeats": repeats, "stat": stat, "forward_ms": {n: round(s * 1e3, 2) for n, s in t.items()},
              "store": str(store) if store else None, "dataset": dataset, "prompts": prompts,
              "max_new_tokens": max_new_tokens, "best": ranked[0] if ranked else None, "ranked": ranked,
              "replay_data": {"prompts": ids, "references": refs}}
    write_json_atomic(out, report)
    for r in ranked[:8]:
        console.print(f"nodes {r['nodes']:3d} depth {r['depth']}: accepted {r['accepted_per_round']:.2f}/round, "
                      f"{r['round_s'] * 1e3:.0f} ms/round -> x{r['speedup_vs_plain']:.2f} vs plain")
    console.print(f"wrote {out}")


def _positive_ints(text: str, flag: str) -> list[int]:
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        vals = []
    if not vals or min(vals) < 1:
        raise InputError(f"{flag} {text!r}: expected comma-separated whole numbers >= 1")
    return vals


def _budgets(text: str) -> list[tuple[int, int]]:
    """'5:4,7:3' -> [(5, 4), (7, 3)]; anything else is one line."""
    pairs = []
    for b in text.split(","):
        n, colon, d = b.partition(":")
        if not colon or not n.strip().isdigit() or not d.strip().isdigit() or int(n) < 1 or int(d) < 1:
            raise InputError(f"--budgets {text!r}: expected NODES:DEPTH pairs of whole numbers >= 1, e.g. 5:4,7:3")
        pairs.append((int(n), int(d)))
    return pairs


@aded_app.command("distill")
def distill(
    model: str = typer.Option("qwen2.5-coder-0.5b-instruct", help="answering model (same tokenizer as the target)"),
    prompts: str = typer.Option("gsm8k", help="gsm8k (train questions), broad (training prompts of many kinds: "
                                              "GSM8K train, MMLU val, SST-2 train, stdlib functions, topic "
                                              "templates), a .jsonl or a text file of prompts"),
    limit: int = typer.Option(256, help="number of prompts"),
    max_new_tokens: int = typer.Option(256),
    batch: int = typer.Option(16, help="prompts generated together (left-padded; transformers only)"),
    engine: bool = typer.Option(False, "--engine", help="answer through this engine (int4 weights, one prompt at a "
                                                         "time, drafted with ADED: the model's greedy text as it "
                                                         "runs here; the fast way for the 1.5B target)"),
    threads: Optional[int] = typer.Option(None, help="torch threads (default: torch's)"),
    out: Path = typer.Option(..., help="JSONL of {prompt, answer}, appended as answers come (a rerun with the "
                                       "same prompts resumes it); then: specdec aded build --from OUT"),
    data: Optional[Path] = typer.Option(None, "--data-dir"),
) -> None:
    """Write a self-distilled corpus: greedy answers of a model to training prompts (never benchmark ones)."""
    from rich.console import Console

    from specdec.drafters.aded.distill import DATA_SOURCES, engine_answers, generate_answers, prompts_from, resume

    console = Console(stderr=True)
    if limit < 1 or max_new_tokens < 1 or batch < 1:
        raise InputError("--limit, --max-new-tokens and --batch must be >= 1")
    check_output_path(out, "--out")
    set_threads(threads)
    rows = prompts_from(prompts, data_dir(str(data) if data else None) if prompts in DATA_SOURCES else Path("."), limit)
    done = resume(out, rows)
    if done:
        console.print(f"{out}: {done} of {len(rows)} answers already there; going on from there")
    todo = rows[done:]
    t0 = time.perf_counter()
    progress = lambda d, n: console.print(f"{done + d}/{done + n} answers, {time.perf_counter() - t0:.0f}s")  # noqa: E731
    if engine:
        from specdec.api import load

        answers = engine_answers(load(model, drafter="aded"), todo, max_new_tokens, progress)
    else:
        from specdec.zoo import load_causal_lm

        hf, tok = load_causal_lm(model)
        answers = generate_answers(hf, tok, todo, max_new_tokens, batch, progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a", encoding="utf-8") as f:
        for rec in answers:
            f.write(json.dumps({"prompt": rec["prompt"], "answer": rec["answer"]}) + "\n")
            f.flush()
    console.print(f"wrote {len(rows)} answers to {out}; next: specdec aded build --from {out} --out STORE")


@aded_app.command("replay")
def replay_cmd(
    references: Path = typer.Option(..., help="a `specdec aded cost` report (its prompts and greedy references)"),
    store: list[str] = typer.Option(["empty"], help="store files, or 'empty' (repeatable)"),
    budget: list[str] = typer.Option(["5:4"], help="nodes:depth (repeatable)"),
    variants: str = typer.Option("tree,chain,no-adapt,persist",
                                 help="comma-separated: tree chain no-adapt persist suffix (the tri-gram tree alone, "
                                      "then one change each; suffix: the longest suffix match first)"),
    out: Optional[Path] = typer.Option(None, help="JSON with every row"),
) -> None:
    """Ablations without the target: accepted tokens per round, replayed against greedy references."""
    from rich.console import Console

    from specdec.drafters.aded.store import TrigramStore
    from specdec.drafters.aded.tune import TRIGRAM_TREE, replay

    console = Console(stderr=True)
    opts = {"tree": {}, "chain": {"chain": True}, "no-adapt": {"adapt": False}, "persist": {"persist": True},
            "suffix": {"suffix": True}}
    bad = sorted(set(variants.split(",")) - set(opts))
    if bad:
        raise InputError(f"--variants: unknown {', '.join(bad)}; known: {', '.join(opts)}")
    rep = json.loads(Path(references).read_text())
    ids, refs = rep["replay_data"]["prompts"], rep["replay_data"]["references"]
    vocab = max(max(max(p) for p in ids), max(max(r) for r in refs if r)) + 1
    rows = []
    for s in store:
        for v in variants.split(","):
            for b in budget:
                n, d = (int(x) for x in b.split(":"))
                st = TrigramStore.empty(vocab) if s == "empty" else TrigramStore.load(s)  # fresh: no leftovers
                r = replay(st, TRIGRAM_TREE.with_options(**opts[v]), ids, refs, n, d)
                rows.append(dict(r, store=s, variant=v))
                console.print(f"{Path(s).name:28s} {v:9s} nodes {n:2d} depth {d}: {r['accepted_per_round']:.2f} "
                              f"accepted/round, search {r['search_ms']:.1f} ms, depths {r['accepted_depth_hist']}")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"references": str(references), "dataset": rep.get("dataset"),
                                   "prompts": len(ids), "tokens": sum(map(len, refs)), "rows": rows}, indent=1))
