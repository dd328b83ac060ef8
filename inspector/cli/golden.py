"""``inspector golden check``: re-judge the golden parts with a model, against its baseline.

The first check of a model version records its answers as the baseline; later checks list every
part whose verdict or class changed against it (or that newly disagrees with its folder's label).
The result is a ``drift_golden`` event in the ledger; exit status 1 when it is an alarm, so a
cron job or a PLC script can act on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from inspector.cli.common import HomeOption, console, err, fail, progress, user_errors
from inspector.cli.line import DbOption, db_url

golden_app = typer.Typer(
    help="Golden parts: a reference set the model re-judges (drift watch).", no_args_is_help=True
)


@golden_app.command("check")
def golden_check(
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Bundle folder or 'demo' (default: deployed).")
    ] = None,
    golden: Annotated[
        Path | None,
        typer.Option(
            "--golden",
            help="Golden parts folder, one sub-folder per class (default: Settings, else <home>/golden).",
        ),
    ] = None,
    station: Annotated[
        str | None, typer.Option("--station", help="Station the ledger event belongs to (default: Settings).")
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON.")] = None,
    no_ledger: Annotated[
        bool, typer.Option("--no-ledger", help="Do not write the event into the results ledger.")
    ] = False,
    db: DbOption = None,
    home: HomeOption = None,
) -> None:
    """Judge every golden part; alarm (exit 1) when one changed against the version's baseline."""
    from inspector.home import app_home
    from inspector.line.golden import check_model, default_golden_dir
    from inspector.report_files import check_report_output
    from inspector.settings import load_settings
    from models.files import atomic_write_text

    home_dir = app_home(home)
    with user_errors():
        settings = load_settings(home_dir)
        if json_path is not None:  # refused before the parts are judged: never over a file not ours
            judged = golden or default_golden_dir(home_dir, settings.golden_dir)
            check_report_output(json_path, "golden", judged=judged)
        progress("judging the golden parts …")
        report = check_model(home_dir, settings, model, golden)
    table = Table(show_header=True, box=None, pad_edge=False)
    for column in ("part", "folder", "baseline", "now", ""):
        table.add_column(column)
    changed = {now.name: before for before, now in report.changed}
    off = {a.name for a in report.off_label}
    new = {a.name for a in report.new}
    for answer in report.answers:
        before = changed.get(answer.name)
        mark = (
            "CHANGED"
            if before
            else "off label"
            if answer.name in off
            else "baseline"
            if answer.name in new
            else ""
        )
        table.add_row(
            answer.name,
            answer.label,
            before.brief() if before else ("(recorded now)" if answer.name in new else answer.brief()),
            answer.brief() + (f" {answer.confidence:.0%}" if answer.confidence is not None else ""),
            mark,
        )
    console.print(table)
    (err.print if report.alarm else console.print)(report.message(), highlight=False, soft_wrap=True)
    if json_path is not None:
        with user_errors():
            atomic_write_text(json_path, json.dumps(report.to_json(), indent=2) + "\n")
    if not no_ledger:
        from inspector.line.golden import log_report
        from inspector.store import Ledger

        url = db_url(db, home_dir)
        with user_errors(), Ledger(url) as ledger:
            log_report(ledger, report, station or settings.station)
    if report.alarm:
        raise fail("golden parts: alarm (see above)", code=1)
