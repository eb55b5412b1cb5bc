"""The one place an error becomes one red line: every `specdec` command group (the sub-apps too) is a
`OneLineGroup`. A project error (SpecDecError), a usage error of the command line (`-n 1.5`, click's own
boxed message before), an OS error (disk full, a closed pipe, a read-only folder) and Ctrl-C each print one
`error: ...` line on stderr, never a traceback. Exit codes: 1 (error), 2 (usage), 130 (interrupted)."""
from __future__ import annotations

import errno
import sys

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

try:  # typer >= 0.2x carries its own copy of click
    from typer._click import exceptions as click_exceptions
    from typer._click.utils import PacifyFlushWrapper
except ImportError:  # pragma: no cover - older typer on the real click
    from click import exceptions as click_exceptions
    from click.utils import PacifyFlushWrapper

from specdec.errors import SpecDecError

err = Console(stderr=True, highlight=False, soft_wrap=True)  # stderr: stats, progress, errors


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def say_error(msg: str) -> None:
    err.print(f"[bold red]error:[/] [red]{escape(one_line(msg))}[/]")


def fail(e: BaseException, code: int = 1) -> None:
    """Print `e` as one red line on stderr and exit with `code`."""
    say_error(str(e) or type(e).__name__)
    raise typer.Exit(code)


def os_error_line(e: OSError) -> str:
    """'cannot write /x/out.json: No space left on device' -- the file and the system's reason, no errno."""
    where = f" {e.filename}" if getattr(e, "filename", None) else ""
    what = "cannot write" if e.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG) else "failed"
    return f"{what}{where}: {e.strerror or e}"


class OneLineGroup(TyperGroup):
    """A command group whose every failure is one red line (see the module docstring)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SpecDecError as e:
            fail(e)
        except KeyboardInterrupt:  # Ctrl-C: one line, exit 130 (what was written is complete: atomic writes)
            fail(KeyboardInterrupt("interrupted"), 130)
        except OSError as e:
            if e.errno == errno.EPIPE or e.errno == errno.ENOSPC:  # stdout gone or full: nothing more to flush
                sys.stdout = PacifyFlushWrapper(sys.stdout)
            if e.errno == errno.EPIPE:
                raise typer.Exit(1) from None
            fail(RuntimeError(os_error_line(e)))

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_exceptions.NoArgsIsHelpError as e:  # `specdec` alone: its help, as before
            e.show()
            sys.exit(e.exit_code)
        except click_exceptions.ClickException as e:  # a usage error: one line, exit 2 (click's code)
            hint = f" (see `{e.ctx.command_path} --help`)" if getattr(e, "ctx", None) is not None else ""
            say_error(e.format_message() + hint)
            sys.exit(e.exit_code)
        except typer.Abort:
            say_error("aborted")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)
