"""``inspector report``: the shift or lot report as a PDF (yield, Pareto, rates, latency, cost per part)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from inspector.cli.common import HomeOption, existing_folder, fail, progress, user_errors
from inspector.cli.line import DbOption, _when, db_url


class Shift(str, Enum):
    current = "current"
    last = "last"


def report(
    shift: Annotated[
        Shift | None,
        typer.Option(
            "--shift", help="The shift now running, or the last complete one (Settings: shift_starts)."
        ),
    ] = None,
    lot: Annotated[str | None, typer.Option("--lot", help="Every part of this lot, whenever judged.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="From (ISO 8601, local time if no zone, or 8h / 7d).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Up to (ISO 8601 or 8h / 7d ago); with --since.")
    ] = None,
    station: Annotated[
        str | None, typer.Option("--station", help="Only this station (default: every station).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="PDF to write (default: report-<window>.pdf here).")
    ] = None,
    png: Annotated[Path | None, typer.Option("--png", help="Also write page 1 as PNG.")] = None,
    twin: Annotated[
        bool,
        typer.Option(
            "--twin/--no-twin", help="Time the model against its unmerged twin now (seconds of CPU)."
        ),
    ] = True,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing report file.")] = False,
    db: DbOption = None,
    home: HomeOption = None,
) -> None:
    """Write the shift / lot report: yield trend, defect Pareto, UNSURE and override rates, drops,
    model versions, per-stage latency and cost per part against the unmerged twin."""
    from inspector.cli.login import actor_at
    from inspector.home import app_home
    from inspector.reports.build import ReportRequest, make_report
    from inspector.reports.window import resolve
    from inspector.settings import load_settings

    with user_errors():
        root = app_home(home)
        actor_at(root, db, "report")
        settings = load_settings(root)
        window = resolve(
            shift=shift.value if shift else None,
            lot=lot,
            since=_when(since, local=True),
            until=_when(until, "--until", local=True),
            station=station,
            shift_starts=settings.shift_starts,
        )
        target = out or Path(f"report-{_slug(window.title)}.pdf")
        if png is not None and png.resolve() == target.resolve():
            raise fail("--png must name another file than the PDF")
        existing_folder(target, png)
        request = ReportRequest(db_url(db, root), window, target, root, twin=twin, overwrite=force, png=png)
        data = make_report(request, progress)
    if not data.summary.parts:
        progress("no parts were judged in this window: the report says so")
    progress(f"wrote {target}" + (f" and {png}" if png else ""))


def _slug(title: str) -> str:
    keep = "".join(ch if ch.isalnum() else "-" for ch in title)
    return "-".join(part for part in keep.split("-") if part)[:60]
