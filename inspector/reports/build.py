"""One report from a ledger URL and a window: gather, measure the twin, render, write atomically."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from inspector.reports.cost import find_bundle, part_cost, time_twin
from inspector.reports.render import ReportInput, write_pdf, write_png
from inspector.reports.window import ReportWindow
from inspector.store import Ledger, ResultFilter
from models.files import atomic_write


@dataclass
class ReportRequest:
    ledger_url: str
    window: ReportWindow
    out: Path
    home: Path
    twin: bool = True  # time the unmerged twin now (a few seconds of CPU)
    backend: str = "auto"
    overwrite: bool = False
    png: Path | None = None  # also page 1 as PNG (the app's preview, docs/)


def gather(request: ReportRequest, say: Callable[[str], None] = lambda _: None) -> ReportInput:
    """The numbers of the report, the twin measured when asked and the model is at hand."""
    window = request.window
    filt = ResultFilter(since=window.since, until=window.until, lot=window.lot, station=window.station)
    say("reading the ledger…")
    with Ledger(request.ledger_url, create=False) as ledger:  # a report reads: no new database
        summary = ledger.summary(filt)
        shown_url = ledger.where
        say("verifying the audit trail…")
        audit = ledger.verify_audit().text()
    cost = part_cost(summary, window.since, window.until)
    versions = summary.versions()
    if not request.twin:
        cost.twin_note = "skipped (--no-twin)"
    elif not versions:
        cost.twin_note = "no parts in this window"
    else:
        main = versions[0]
        bundle = find_bundle(main["sha256"], request.home)
        if bundle is None:
            cost.twin_note = f"model {main['name']} ({main['sha256'][:12]}) is not in this PC's registry"
        else:
            say(f"timing {bundle.name} against its unmerged twin…")
            cost.twin = time_twin(bundle, request.backend, home=request.home)
    return ReportInput(window, summary, cost, shown_url, datetime.now(timezone.utc), audit)


def make_report(request: ReportRequest, say: Callable[[str], None] = lambda _: None) -> ReportInput:
    """Write the PDF (whole or not at all) and, on request, page 1 as PNG."""
    data = gather(request, say)
    say(f"writing {request.out}…")
    atomic_write(request.out, lambda tmp: write_pdf(data, tmp), overwrite=request.overwrite)
    if request.png is not None:
        atomic_write(request.png, lambda tmp: write_png(data, tmp), overwrite=True)
    return data
