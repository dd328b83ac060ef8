"""What every ``inspector`` command shares: the one-line error, the consoles, the --home option."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from inspector.errors import USER_ERRORS
from inspector.settings import load_settings

try:  # typer 0.2x carries its own copy of Click; older typer runs on Click itself
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException, UsageError  # type: ignore[assignment]

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home", help="App home folder (default: $INSPECTOR_HOME or the user data dir).", show_default=False
    ),
]

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="SQLAlchemy URL of the results ledger (default: SQLite in the home folder)."),
]

console = Console()
err = Console(stderr=True)


def progress(message: str) -> None:
    """Progress lines go to stderr, so stdout carries only results."""
    err.print(message, highlight=False)


def visible(text: str) -> str:
    """``text`` with control and format characters written as escapes (``\\n``, ``\\x1b``, ``\\u202e``).

    What people typed (a ``--reason``, a ``--by``) is stored as given, but printed raw a newline
    forges a second row and an ANSI or bidi sequence rewrites the terminal: shown this way, one
    record is always one line, and what it says is what it holds.
    """
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch).startswith("C") else ch
        for ch in text
    )


def fail(message: str | Exception, code: int = 2) -> typer.Exit:
    """Print one clear line and return the exit to raise (OS errors say which file and why)."""
    if isinstance(message, OSError):
        message = f"{message.filename or ''}: {message.strerror or message}".lstrip(": ")
    err.print(Text.assemble(("error: ", "bold red"), str(message)), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def existing_folder(*outputs: Path | None) -> None:
    """Refuse an output whose folder does not exist: a mistyped folder is reported, never created
    (the atomic write would make it, and a typo would scatter folders and files)."""
    for output in outputs:
        if output is not None and not output.parent.is_dir():
            raise fail(f"{output.parent}: folder does not exist")


class OneLineErrors(TyperGroup):
    """The command group whose usage errors are this CLI's one line and exit 2.

    Click reports an option out of its range (``--drift-after -1``), a missing argument or an
    unknown option as a usage block and a boxed panel; a line PC's log and a plant engineer's
    script want the same single ``error: ...`` line that every other refusal gives.
    """

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # the help is already printed
                sys.exit(exc.exit_code)
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            fail(" ".join(exc.format_message().split()) + where)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            fail(" ".join(exc.format_message().split()), exc.exit_code)
            sys.exit(exc.exit_code)
        except typer.Abort:
            fail("aborted", 1)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def choice(option: str, choices: Sequence[str], text: str, *aliases: str) -> Any:
    """A ``typer.Option`` for ``option`` whose value is one of ``choices``.

    ``--help`` lists them (``<ltm|tome|none>``), and a wrong value ends the command before any work
    with this CLI's one line and exit 2 (``--merge must be one of ltm, tome, none, got 'x'``), the
    wording the library's own checks use, rather than Click's boxed usage error.
    """

    def parse(value: str) -> str:
        if value not in choices:
            raise fail(f"{option} must be one of {', '.join(choices)}, got {value!r}")
        return value

    return typer.Option(option, *aliases, parser=parse, metavar=f"<{'|'.join(choices)}>", help=text)


@contextmanager
def user_errors(
    *extra: type[Exception], interrupted: str | Callable[[], str] | None = None
) -> Iterator[None]:
    """Run a command's body: what a person can fix (``USER_ERRORS`` and ``extra``) ends it with one
    line and exit 2, Ctrl-C with ``interrupted`` and exit 130 when given; anything else is a bug and
    keeps its traceback. ``interrupted`` may be a function, asked at the moment of the Ctrl-C, when
    what to say depends on how far the command got (train: whether a checkpoint exists yet)."""
    try:
        yield
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        raise fail(interrupted() if callable(interrupted) else interrupted, 130) from None
    except (*USER_ERRORS, *extra) as exc:
        raise fail(exc) from None


def db_url(db: str | None, home: Path) -> str:
    """The ledger a command with ``--db`` and ``--home`` uses (``--db``, $INSPECTOR_DB, the settings,
    else SQLite in the home folder). Here, not in a command module, because most command groups and
    the login prompt need it.

    The line's assembly is imported when called, like the commands' own work: ``inspector --help``
    never loads torch.
    """
    from inspector.line.build import ledger_url

    return ledger_url(db, home, load_settings(home))
