"""What every ``inspector`` command shares: the one-line error, the consoles, the --home option."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from inspector.errors import USER_ERRORS

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home", help="App home folder (default: $INSPECTOR_HOME or the user data dir).", show_default=False
    ),
]

console = Console()
err = Console(stderr=True)


def progress(message: str) -> None:
    """Progress lines go to stderr, so stdout carries only results."""
    err.print(message, highlight=False)


def fail(message: str | Exception, code: int = 2) -> typer.Exit:
    """Print one clear line and return the exit to raise (OS errors say which file and why)."""
    if isinstance(message, OSError):
        message = f"{message.filename or ''}: {message.strerror or message}".lstrip(": ")
    err.print(Text.assemble(("error: ", "bold red"), str(message)), highlight=False, soft_wrap=True)
    return typer.Exit(code)


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
def user_errors(*extra: type[Exception], interrupted: str | None = None) -> Iterator[None]:
    """Run a command's body: what a person can fix (``USER_ERRORS`` and ``extra``) ends it with one
    line and exit 2, Ctrl-C with ``interrupted`` and exit 130 when given; anything else is a bug and
    keeps its traceback."""
    try:
        yield
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        raise fail(interrupted, 130) from None
    except (*USER_ERRORS, *extra) as exc:
        raise fail(exc) from None
