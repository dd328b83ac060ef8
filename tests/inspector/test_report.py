"""The shift / lot report: the window it covers, the ledger's numbers it folds, the PDF it writes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from ledger_support import BACKENDS, T0, database_url, record
from typer.testing import CliRunner

from inspector.cli import app
from inspector.errors import InspectorError
from inspector.reports.cost import PartCost, TwinTiming, find_bundle, part_cost
from inspector.reports.window import resolve, shift_window
from inspector.store import Ledger, ResultFilter
from inspector.store.summary import bucket_minutes

runner = CliRunner()
UTC = timezone.utc
SHIFTS = ["06:00", "14:00", "22:00"]


# -- the window ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "which", "start", "end", "number"),
    [
        (datetime(2026, 12, 1, 15, 0), "current", datetime(2026, 12, 1, 14), datetime(2026, 12, 1, 22), 2),
        (datetime(2026, 12, 1, 15, 0), "last", datetime(2026, 12, 1, 6), datetime(2026, 12, 1, 14), 1),
        # the night shift belongs to the day it starts, on both sides of midnight
        (datetime(2026, 12, 1, 2, 0), "current", datetime(2026, 11, 30, 22), datetime(2026, 12, 1, 6), 3),
        (datetime(2026, 12, 1, 2, 0), "last", datetime(2026, 11, 30, 14), datetime(2026, 11, 30, 22), 2),
        (datetime(2026, 12, 1, 6, 0), "last", datetime(2026, 11, 30, 22), datetime(2026, 12, 1, 6), 3),
    ],
)
def test_shift_window(now, which, start, end, number):
    got = shift_window(which, SHIFTS, now.replace(tzinfo=UTC))
    assert got == (start.replace(tzinfo=UTC), end.replace(tzinfo=UTC), number)


def test_one_shift_a_day_runs_to_the_next_day():
    start, end, number = shift_window("current", ["07:30"], datetime(2026, 12, 1, 7, 0, tzinfo=UTC))
    assert (start.day, start.hour, start.minute, end.day, number) == (30, 7, 30, 1, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "say what the report covers"),
        ({"shift": "last", "lot": "L1"}, "say what the report covers"),
        ({"lot": "L1", "until": T0}, "--until needs --since"),
        ({"since": T0, "until": T0}, "later than --since"),
        ({"shift": "yesterday"}, "choose current or last"),
    ],
)
def test_window_refuses_unclear_requests(kwargs, message):
    arguments = {"shift": None, "lot": None, "since": None, "until": None, "station": None}
    with pytest.raises(InspectorError, match=message):
        resolve(**{**arguments, **kwargs}, shift_starts=SHIFTS)


def test_bucket_sizes_keep_the_trend_readable():
    assert bucket_minutes(timedelta(minutes=30)) == 1
    assert bucket_minutes(timedelta(hours=1)) == 2
    assert bucket_minutes(timedelta(hours=8)) == 15
    assert bucket_minutes(timedelta(days=7)) == 240
    assert bucket_minutes(timedelta(days=120)) % 1440 == 0


# -- the ledger's numbers --------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def ledger(request, tmp_path):
    with database_url(request.param, tmp_path) as url:
        opened = Ledger(url)
        try:
            yield opened
        finally:
            opened.close()


def _verdict(i: int) -> tuple[str, str | None]:
    if i % 10 == 9:
        return "NG", "crack" if i % 20 == 9 else "spot"
    if i % 10 == 4:
        return "NG", "crack"
    if i == 7:
        return "UNSURE", "spot"
    if i == 13:
        return "ERROR", None
    return "OK", "ok"


@pytest.fixture
def seeded(ledger):
    """Two stations; on line-1 a 40-part run over 40 minutes (lot L1), QA reviews two of its parts
    (one override); on line-2 five parts of lot L2."""
    one, two = ledger.ensure_station("line-1"), ledger.ensure_station("line-2")
    model = ledger.ensure_model_version("c" * 64, "v3", {"classes": ["ok", "crack", "spot"]}, {})
    run = ledger.start_run(one, model, "sim", operator="ann", lot="L1")
    other = ledger.start_run(two, model, "sim", operator="bob", lot="L2")
    records = [record(run, i, i, *_verdict(i), latency_infer_ms=float(i)) for i in range(40)]
    ledger.add_results(records)
    ledger.add_results([record(other, i, 10 + i) for i in range(5)])
    ledger.finish_run(
        run,
        {
            "verdicts": {"OK": 30, "NG": 8, "UNSURE": 1, "ERROR": 1},
            "cpu_s": 2.0,
            "drops": {"decode": 3},
            "overruns": 0,
        },
    )
    rows = ledger.query_results(ResultFilter(run_id=run), newest_first=False, limit=100)
    ledger.review(rows[4]["id"], "spot", "qa", "crack was a spot")  # an override
    ledger.review(rows[9]["id"], rows[9]["label"], "qa", "confirmed")
    return ledger, run


def test_summary_counts_what_the_ledger_holds(seeded):
    ledger, run = seeded
    summary = ledger.summary(ResultFilter(station="line-1"))
    assert summary.parts == 40
    assert dict(summary.verdicts) == {"OK": 30, "NG": 8, "UNSURE": 1, "ERROR": 1}
    assert dict(summary.defects) == {"crack": 6, "spot": 2}
    assert (summary.reviewed, summary.overrides) == (2, 1)
    assert summary.first == T0 and summary.last == T0 + timedelta(minutes=39)
    assert sum(bucket.parts for bucket in summary.buckets) == 40
    assert summary.bucket_minutes == 1 and summary.buckets[0].start == T0
    assert [b.parts for b in summary.buckets] == [1] * 40
    assert np.allclose(np.sort(summary.latency_ms["infer"]), np.arange(40))
    assert [r["id"] for r in summary.runs] == [run]
    assert summary.versions() == [{"name": "v3", "sha256": "c" * 64, "parts": 40, "runs": 1}]


def test_summary_of_a_window_and_of_a_lot(seeded):
    ledger, _ = seeded
    window = ledger.summary(ResultFilter(since=T0 + timedelta(minutes=10), until=T0 + timedelta(minutes=20)))
    assert window.parts == 10 + 5  # both stations
    assert window.buckets[0].start == T0 + timedelta(minutes=10)
    assert ledger.summary(ResultFilter(lot="L2")).parts == 5
    empty = ledger.summary(ResultFilter(lot="nope"))
    assert empty.parts == 0 and empty.buckets == [] and empty.runs == []


def test_cost_per_part_from_the_runs_own_accounting(seeded):
    ledger, _ = seeded
    summary = ledger.summary(ResultFilter(station="line-1"))
    cost = part_cost(summary, None, None)
    assert cost.cpu_ms_per_part == pytest.approx(2000.0 / 40)
    assert cost.runs_measured == 1
    assert cost.infer_p50_ms == pytest.approx(19.5)


def test_cost_rows_put_the_twin_in_the_same_terms():
    cost = PartCost(cpu_ms_per_part=40.0, runs_measured=1, rate_parts_s=10.0, infer_p50_ms=20.0, cores=2)
    ((name, cpu, capacity, headroom),) = cost.rows()
    assert (cpu, capacity, headroom) == (40.0, 50.0, 5.0)  # min(1000/20, 2*1000/40)
    cost.twin = TwinTiming("m", "PyTorch", 3, cpu_ms=25.0, wall_ms=20.0, twin_cpu_ms=35.0, twin_wall_ms=40.0)
    twin = cost.rows()[1]
    assert twin[0] == "unmerged twin"
    assert twin[1] == pytest.approx(50.0)  # the line's 40 plus the twin's extra 10 CPU-ms
    assert twin[2] == pytest.approx(25.0)  # inference twice as long: 1000 / 40
    assert twin[3] == pytest.approx(2.5)


def test_find_bundle_by_weights_checksum(tmp_path):
    from inspector.line.demo import demo_model_path
    from models.bundle import read_meta

    sha = read_meta(demo_model_path())[1]
    assert find_bundle(sha, tmp_path) == demo_model_path()
    assert find_bundle("0" * 64, tmp_path) is None


# -- the command -----------------------------------------------------------------------------


def _demo_ledger(tmp_path) -> str:
    """A real run of the bundled model on the simulated station, 30 parts."""
    home = tmp_path / "home"
    result = runner.invoke(app, ["demo", "--headless", "--frames", "30", "--fps", "50", "--home", str(home)])
    assert result.exit_code == 0, result.output
    return str(home)


def test_report_command_writes_a_two_page_pdf_and_a_png(tmp_path):
    home = _demo_ledger(tmp_path)
    out, png = tmp_path / "shift.pdf", tmp_path / "page1.png"
    args = ["report", "--since", "1h", "--home", home, "--out", str(out), "--png", str(png), "--no-twin"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    pdf = out.read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 2
    assert png.read_bytes().startswith(b"\x89PNG")
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output and out.read_bytes() == pdf
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


def test_report_times_the_unmerged_twin(tmp_path):
    from inspector.reports.build import ReportRequest, gather

    _demo_ledger(tmp_path)
    window = resolve(shift=None, lot="demo", since=None, until=None, station=None, shift_starts=SHIFTS)
    url = f"sqlite:///{tmp_path / 'home' / 'inspector.db'}"
    data = gather(ReportRequest(url, window, tmp_path / "r.pdf", tmp_path / "home", backend="torch"))
    with Ledger(url) as ledger:  # a loaded machine may drop a few of the 30 frames
        assert data.summary.parts == ledger.count_results(ResultFilter(lot="demo")) > 0
    twin = data.cost.twin
    assert twin is not None and twin.model == "demo_model" and twin.backend == "PyTorch"
    assert twin.cpu_ms > 0 and twin.twin_cpu_ms > 0
    assert data.cost.cpu_ms_per_part is not None and data.cost.cpu_ms_per_part > 0
    assert len(data.cost.rows()) == 2


def test_report_states_whether_the_audit_trail_verified(tmp_path):
    import sqlite3

    from inspector.reports.build import ReportRequest, gather

    _demo_ledger(tmp_path)
    window = resolve(shift=None, lot="demo", since=None, until=None, station=None, shift_starts=SHIFTS)
    db = tmp_path / "home" / "inspector.db"
    url = f"sqlite:///{db}"
    with Ledger(url) as ledger:
        result_id = ledger.query_results(ResultFilter())[0]["id"]
        ledger.review(result_id, "defective", "qa1", "crack")
        ledger.review(result_id, "functional", "qa1", "it was dust")
    request = ReportRequest(url, window, tmp_path / "r.pdf", tmp_path / "home", twin=False)
    assert "2 rows, chain intact" in gather(request).audit
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE audit_log SET actor = 'nobody' WHERE reason = 'crack'")
    assert "BROKEN at row" in gather(request).audit


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "say what the report covers"),
        (["--since", "yesterday"], "use ISO 8601"),
        (["--shift", "last", "--lot", "L"], "say what the report covers"),
    ],
)
def test_report_command_one_line_errors(tmp_path, extra, message):
    result = runner.invoke(app, ["report", "--home", str(tmp_path), "--out", str(tmp_path / "r.pdf"), *extra])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r.pdf").exists()


def test_names_with_mathtext_are_drawn_as_written(tmp_path):
    """A lot or class named like ``$x^{`` stopped the report with a matplotlib mathtext traceback."""
    url = f"sqlite:///{tmp_path / 'line.db'}"
    with Ledger(url) as ledger:
        model = ledger.ensure_model_version("d" * 64, "$v^{", {}, {})
        run = ledger.start_run(ledger.ensure_station("line-$1^{"), model, "sim", lot="$x^{")
        ledger.add_results(
            [record(run, i, i, *(("NG", "$a^{") if i % 2 else ("OK", "ok"))) for i in range(6)]
        )
    out, png = tmp_path / "r.pdf", tmp_path / "r.png"
    args = ["report", "--lot", "$x^{", "--db", url, "--home", str(tmp_path), "--no-twin"]
    result = runner.invoke(app, [*args, "--out", str(out), "--png", str(png)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert out.read_bytes().startswith(b"%PDF") and png.read_bytes().startswith(b"\x89PNG")
