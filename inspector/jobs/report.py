"""The app's *Report…*, as a job below the line (timing the unmerged twin takes seconds of CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inspector.reports.window import ReportWindow


def report_job(ledger_url: str, window: ReportWindow, out: Path, home: Path, *, task: Any) -> str:
    """Write the report to ``out``, which the user chose in a save dialog that already asked
    before replacing a file."""
    # Here, not at the top: the renderer and the twin's timing are not loaded by the app at start,
    # and the app imports this module only to name the job.
    from inspector.reports.build import ReportRequest, make_report

    request = ReportRequest(ledger_url, window, Path(out), Path(home), overwrite=True)
    data = make_report(request, task.report)
    parts = data.summary.parts
    return f"Report written to {out} ({parts:,} parts" + (")" if parts else "; none in this window)")
