"""The ``inspector`` command line (DESIGN §4 CLI contract: extend, don't break).

Every user-facing failure is one line on stderr and a non-zero exit; tracebacks are for bugs.
Headless commands never import Qt.
"""

from __future__ import annotations

from typing import Annotated

import typer

from inspector.cli import datasets as cli_datasets
from inspector.cli import models as cli_models
from inspector.cli import training as cli_training
from inspector.cli.common import OneLineErrors, console

app = typer.Typer(
    name="inspector",
    cls=OneLineErrors,
    help="LTM Inspector: inline visual inspection with token-merging vision transformers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            console.print(f"ltm-inspector {version('ltm-inspector')}", highlight=False)
        except PackageNotFoundError:
            console.print("ltm-inspector (not installed: running from a source tree)", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the installed version and exit."
        ),
    ] = False,
) -> None:
    """LTM Inspector: inline visual inspection with token-merging vision transformers."""


models_app = typer.Typer(help="Inspect model bundles and manage the model registry.", no_args_is_help=True)
app.add_typer(models_app, name="models")
data_app = typer.Typer(help="Check station datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

app.command("train")(cli_training.train)
app.command("eval")(cli_training.evaluate)
app.command("finetune")(cli_training.finetune)
app.command("export")(cli_training.export)
models_app.command("info")(cli_models.models_info)
models_app.command("list")(cli_models.models_list)
data_app.command("info")(cli_datasets.data_info)


def _register_line_commands() -> None:
    """The live-line commands (run, demo, results, db) live in their own module."""
    from inspector.cli import line as cli_line

    app.command("run")(cli_line.run)
    app.command("demo")(cli_line.demo)
    app.command("gui")(cli_line.gui)
    app.add_typer(cli_line.results_app, name="results")
    app.add_typer(cli_line.db_app, name="db")
    from inspector.cli.audit import audit_app
    from inspector.cli.golden import golden_app
    from inspector.cli.report import report
    from inspector.cli.rollout import (
        models_audit,
        models_deploy,
        models_rollback,
        models_shadow_discard,
        models_shadow_promote,
        models_shadow_summary,
    )
    from inspector.cli.users import users_app

    app.command("report")(report)
    app.add_typer(audit_app, name="audit")
    app.add_typer(golden_app, name="golden")
    app.add_typer(users_app, name="users")
    models_app.command("deploy")(models_deploy)
    models_app.command("rollback")(models_rollback)
    models_app.command("audit")(models_audit)
    models_app.command("shadow-summary")(models_shadow_summary)
    models_app.command("shadow-promote")(models_shadow_promote)
    models_app.command("shadow-discard")(models_shadow_discard)
    from inspector.cli.bench import models_bench

    models_app.command("bench")(models_bench)


_register_line_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
