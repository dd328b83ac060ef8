"""What every ``inspector`` command shares: the one-line error, the consoles, the --home option."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from data.errors import DataError
from inspector.errors import InspectorError
from models.errors import ModelError

USER_ERRORS = (ModelError, DataError, InspectorError, OSError)

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
