"""The results ledger on SQLite and on a real PostgreSQL: writes, QA queries, reviews, export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from ledger_support import BACKENDS, T0, database_url, record

from inspector.errors import InspectorError
from inspector.store import Ledger, LedgerError, ResultFilter


@pytest.fixture(params=BACKENDS)
def ledger(request, tmp_path):
    with database_url(request.param, tmp_path) as url:
        opened = Ledger(url)
        try:
            yield opened
        finally:
            opened.close()


def _verdict(i: int) -> tuple[str, str | None]:
    if i == 11:
        return "ERROR", None
    if i % 5 == 0:
        return "NG", "scratch"
    if i % 7 == 3:
        return "UNSURE", "spot"
    return "OK", "ok"


@pytest.fixture
def seeded(ledger):
    """Two runs (lots L1, L2; two model versions), 30 results; returns (ledger, ids, records)."""
    station = ledger.ensure_station("line-1", {"camera": "cam0"})
    m1 = ledger.ensure_model_version("a" * 64, "m1", {"classes": ["ok", "scratch", "spot"]}, {"acc": 0.9})
    m2 = ledger.ensure_model_version("b" * 64, "m2", {}, {})
    run1 = ledger.start_run(station, m1, "folder:/a", operator="ann", lot="L1")
    run2 = ledger.start_run(station, m2, "folder:/b", operator="bob", lot="L2")
    records = [record(run1, i, i, *_verdict(i)) for i in range(20)]
    records += [record(run2, i, 100 + i, *_verdict(i)) for i in range(10)]
    ledger.add_results(records[:20])
    ledger.add_results(records[20:])
    ids = {"station": station, "m1": m1, "m2": m2, "run1": run1, "run2": run2}
    return ledger, ids, records


def test_add_results_round_trip(seeded):
    ledger, ids, records = seeded
    rows = ledger.query_results(ResultFilter(run_id=ids["run1"]), newest_first=False)
    assert [row["frame_index"] for row in rows] == list(range(20))
    got = ledger.get_result(rows[0]["id"])
    want = records[0]
    for name in ("run_id", "frame_index", "captured_at", "verdict", "label", "confidence", "probabilities"):
        assert got[name] == getattr(want, name), name
    assert got["captured_at"].utcoffset() == timedelta(0)
    assert got["latency_total_ms"] == pytest.approx(10.5)
    assert got["lot"] == "L1" and got["model_version_id"] == ids["m1"]
    assert got["reviewed"] is False and got["reviewed_label"] is None
    error = ledger.get_result(rows[11]["id"])
    assert error["verdict"] == "ERROR" and error["label"] is None and error["error"] == "decode failed"
    with pytest.raises(LedgerError, match="no result with id 999999"):
        ledger.get_result(999_999)


def test_add_results_is_all_or_nothing(seeded):
    ledger, ids, _ = seeded
    before = ledger.count_results(ResultFilter())
    bad_verdict = [record(ids["run1"], 100, 1), record(ids["run1"], 101, 2, "MAYBE")]
    with pytest.raises(LedgerError, match="MAYBE"):
        ledger.add_results(bad_verdict)
    naive = record(ids["run1"], 100, 1)
    naive.captured_at = naive.captured_at.replace(tzinfo=None)
    with pytest.raises(LedgerError, match="time zone"):
        ledger.add_results([naive])
    with pytest.raises(LedgerError, match="no run with id 4242"):
        ledger.add_results([record(4242, 0, 1)])
    # The database itself refuses the last row (NOT NULL): the whole batch rolls back.
    with pytest.raises(LedgerError):
        ledger.add_results(
            [record(ids["run1"], 100 + i, 1) for i in range(5)] + [record(ids["run1"], None, 1)]
        )
    assert ledger.count_results(ResultFilter()) == before
    ledger.add_results([])
    assert ledger.count_results(ResultFilter()) == before


def _expected(records, ids, filt: ResultFilter) -> list[int]:
    """Frame keys (run_id, frame_index) the filter should select, computed in Python."""
    lots = {ids["run1"]: "L1", ids["run2"]: "L2"}
    models = {ids["run1"]: ids["m1"], ids["run2"]: ids["m2"]}
    keep = []
    for r in records:
        if filt.since and r.captured_at < filt.since or filt.until and r.captured_at >= filt.until:
            continue
        if filt.verdicts and r.verdict not in filt.verdicts or filt.labels and r.label not in filt.labels:
            continue
        if filt.lot is not None and lots[r.run_id] != filt.lot or filt.run_id not in (None, r.run_id):
            continue
        if filt.model_version_id not in (None, models[r.run_id]):
            continue
        keep.append((r.run_id, r.frame_index))
    return sorted(keep)


@pytest.mark.parametrize(
    "terms",
    [
        {},
        {"since": T0 + timedelta(minutes=5), "until": T0 + timedelta(minutes=105)},
        {"verdicts": ("NG", "UNSURE")},
        {"verdicts": ("NG",), "lot": "L2"},
        {"since": T0 + timedelta(minutes=3), "verdicts": ("NG", "UNSURE", "ERROR"), "lot": "L1"},
        {"labels": ("spot",)},
        {"model_version_id": "m2"},
        {"run_id": "run1", "until": T0 + timedelta(minutes=10)},
        {"lot": "no-such-lot"},
    ],
)
def test_filters(seeded, terms):
    ledger, ids, records = seeded
    terms = {k: ids[v] if k in ("run_id", "model_version_id") else v for k, v in terms.items()}
    filt = ResultFilter(**terms)
    want = _expected(records, ids, filt)
    rows = ledger.query_results(filt, limit=1000)
    assert sorted((row["run_id"], row["frame_index"]) for row in rows) == want
    assert ledger.count_results(filt) == len(want)


def test_reviewed_filter_and_naive_times_are_utc(seeded):
    ledger, ids, _ = seeded
    ng = ledger.query_results(ResultFilter(verdicts=("NG",)), limit=1000)
    ledger.review(ng[0]["id"], "scratch", "qa-1")
    ledger.review(ng[1]["id"], "ok", "qa-1", reason="dust, not a scratch")
    unreviewed = ResultFilter(verdicts=("NG", "UNSURE"), reviewed=False)
    assert (
        ledger.count_results(unreviewed) == ledger.count_results(ResultFilter(verdicts=("NG", "UNSURE"))) - 2
    )
    assert ledger.count_results(ResultFilter(reviewed=True)) == 2
    naive = ResultFilter(since=T0.replace(tzinfo=None) + timedelta(minutes=100))
    assert ledger.count_results(naive) == 10
    with pytest.raises(LedgerError, match="unknown verdict 'BAD'"):
        ledger.count_results(ResultFilter(verdicts=("BAD",)))


def test_paging_newest_first_and_oldest_first(seeded):
    ledger, _, records = seeded
    filt = ResultFilter(verdicts=("OK",))
    total = ledger.count_results(filt)
    pages = [ledger.query_results(filt, offset=offset, limit=7) for offset in range(0, total + 7, 7)]
    assert all(len(page) <= 7 for page in pages) and pages[-1] == []
    flat = [row for page in pages for row in page]
    assert len(flat) == total == len({row["id"] for row in flat})
    times = [row["captured_at"] for row in flat]
    assert times == sorted(times, reverse=True)
    oldest = ledger.query_results(filt, limit=3, newest_first=False)
    assert [row["captured_at"] for row in oldest] == sorted(times)[:3]
    assert ledger.query_results(filt, offset=total, limit=5) == []
    with pytest.raises(LedgerError):
        ledger.query_results(filt, offset=-1)


def test_review_appends_audit_rows_and_requires_a_reason_to_override(seeded):
    ledger, ids, _ = seeded
    result = ledger.query_results(ResultFilter(verdicts=("NG",)), limit=1)[0]
    with pytest.raises(LedgerError, match="needs a reason"):
        ledger.review(result["id"], "ok", "qa-1")
    with pytest.raises(LedgerError, match="reviewer"):
        ledger.review(result["id"], "scratch", "  ")
    with pytest.raises(InspectorError, match="no result"):
        ledger.review(987_654, "ok", "qa-1", reason="x")
    assert ledger.history(result["id"]) == []

    ledger.review(result["id"], "scratch", "qa-1")  # confirm: no reason needed
    ledger.review(result["id"], "ok", "qa-2", reason="reflection, part is fine")
    ledger.review(result["id"], "spot", "qa-3", reason="a spot after all")

    now = ledger.get_result(result["id"])
    assert now["reviewed"] is True and now["reviewed_label"] == "spot" and now["label"] == "scratch"
    trail = ledger.history(result["id"])
    assert [(r["reviewer"], r["old_label"], r["new_label"]) for r in trail] == [
        ("qa-1", "scratch", "scratch"),
        ("qa-2", "scratch", "ok"),
        ("qa-3", "ok", "spot"),
    ]
    assert trail[1]["reason"] == "reflection, part is fine"
    assert [r["reviewed_at"] for r in trail] == sorted(r["reviewed_at"] for r in trail)
    assert all(r["reviewed_at"].tzinfo is not None for r in trail)


def test_export_csv(seeded, tmp_path):
    ledger, ids, records = seeded
    first_ng = ledger.query_results(ResultFilter(verdicts=("NG",), lot="L1"), limit=1)[0]
    ledger.review(first_ng["id"], "ok", "qa", "fine")
    target = tmp_path / "out.csv"
    assert ledger.export_csv(target, ResultFilter(lot="L1")) == 20
    rows = list(csv.DictReader(target.open(newline="")))
    header = list(rows[0])
    assert header == [
        "id",
        "run_id",
        "lot",
        "frame_index",
        "captured_at",
        "verdict",
        "label",
        "confidence",
        "ood_score",
        "truth",
        "reviewed",
        "reviewed_label",
        "latency_total_ms",
        "image_ref",
        "prob_ok",
        "prob_scratch",
        "prob_spot",
    ]
    assert [int(row["frame_index"]) for row in rows] == list(range(20))
    assert {row["lot"] for row in rows} == {"L1"}
    assert rows[0]["captured_at"] == "2024-03-01T00:00:00+00:00"
    assert rows[0]["verdict"] == "NG" and float(rows[0]["prob_scratch"]) == pytest.approx(0.2)
    assert rows[11]["verdict"] == "ERROR" and rows[11]["label"] == "" and rows[11]["prob_ok"] == ""
    assert sum(row["reviewed"] == "true" for row in rows) == 1

    buffer = io.StringIO()
    assert ledger.export_csv(buffer, ResultFilter(verdicts=("ERROR",))) == 1
    assert buffer.getvalue().splitlines()[0].endswith("image_ref")  # no probabilities: no prob_ columns
    empty = io.StringIO()
    assert ledger.export_csv(empty, ResultFilter(lot="none")) == 0
    assert len(empty.getvalue().splitlines()) == 1
    with pytest.raises(LedgerError, match="cannot write"):
        ledger.export_csv(tmp_path / "missing" / "out.csv", ResultFilter())


def test_runs_finish_and_mark_interrupted(seeded):
    ledger, ids, records = seeded
    other = ledger.ensure_station("line-2")
    run3 = ledger.start_run(other, ids["m1"], "camera:1")
    ledger.finish_run(ids["run2"], {"frames": 10})
    with pytest.raises(LedgerError, match="already finished"):
        ledger.finish_run(ids["run2"], {})
    with pytest.raises(LedgerError, match="not 'done'"):
        ledger.finish_run(ids["run1"], {}, status="done")

    assert ledger.mark_interrupted_runs(station_id=ids["station"]) == [ids["run1"]]
    assert ledger.mark_interrupted_runs() == [run3]
    assert ledger.mark_interrupted_runs() == []

    runs = {run["id"]: run for run in ledger.runs()}
    assert runs[ids["run1"]]["status"] == "interrupted"
    assert runs[ids["run1"]]["stopped_at"] == records[19].captured_at  # the last result's time
    assert runs[ids["run2"]]["status"] == "finished" and runs[ids["run2"]]["stats"] == {"frames": 10}
    assert runs[run3]["stopped_at"] == runs[run3]["started_at"]  # no results: stopped as it started
    assert runs[ids["run1"]]["station"] == "line-1" and runs[ids["run1"]]["model_sha256"] == "a" * 64
    assert [run["id"] for run in ledger.runs(limit=2)] == [run3, ids["run2"]]

    events = ledger.events(run_id=ids["run1"])
    assert len(events) == 1 and events[0]["kind"] == "interrupted" and events[0]["level"] == "warning"
    assert "20 results kept" in events[0]["message"]


def test_events_and_idempotent_registration(ledger):
    station = ledger.ensure_station("line-1")
    assert ledger.ensure_station("line-1", {"lens": "12mm"}) == station
    assert ledger.ensure_station("line-1") == station
    model = ledger.ensure_model_version("c" * 64, "m", {"a": 1}, {})
    assert ledger.ensure_model_version("c" * 64, "renamed", {}, {}) == model
    with pytest.raises(LedgerError, match="no station"):
        ledger.start_run(station + 100, model, "x")
    ledger.add_event("reconnect", "camera back after 2 s", level="warning", station_id=station)
    ledger.add_event("archive_full", "archive above 95 %", level="alarm")
    with pytest.raises(LedgerError, match="level 'fatal'"):
        ledger.add_event("x", "y", level="fatal")
    events = ledger.events()
    assert [event["kind"] for event in events] == ["archive_full", "reconnect"]
    assert events[1]["station_id"] == station and events[0]["station_id"] is None
    assert len(ledger.events(limit=1)) == 1


def test_two_writers_and_a_reader_at_once(ledger):
    """Two ledgers on one database (like two processes) write while a third reads: no lock errors."""
    from concurrent.futures import ThreadPoolExecutor

    station = ledger.ensure_station("line-1")
    model = ledger.ensure_model_version("d" * 64, "m", {}, {})
    runs = [ledger.start_run(station, model, f"cam:{n}") for n in range(2)]

    def write(run: int) -> None:
        with Ledger(ledger.url) as other:
            for batch in range(15):
                other.add_results([record(run, batch * 10 + i, batch) for i in range(10)])
                other.review(other.query_results(ResultFilter(run_id=run), limit=1)[0]["id"], "ok", "qa")

    def read() -> None:
        for _ in range(30):
            ledger.query_results(ResultFilter(verdicts=("OK",)), limit=20)

    with ThreadPoolExecutor(3) as pool:
        for future in [pool.submit(write, runs[0]), pool.submit(write, runs[1]), pool.submit(read)]:
            future.result()
    assert ledger.count_results(ResultFilter()) == 300
    assert ledger.count_results(ResultFilter(reviewed=True)) >= 2


def test_classes_come_from_the_registered_models(ledger):
    ledger.ensure_model_version("a" * 64, "m1", {"classes": ["defect", "ok"]}, {})
    ledger.ensure_model_version("b" * 64, "m2", {"classes": ["ok", "scratch"]}, {})
    assert ledger.classes() == ["defect", "ok", "scratch"]


def test_export_csv_neutralises_cells_a_spreadsheet_would_run(ledger):
    """A lot named ``=HYPERLINK(...)`` was written raw: opened in a spreadsheet, it ran as a formula."""
    station = ledger.ensure_station("line-1")
    model = ledger.ensure_model_version("c" * 64, "m", {}, {})
    run = ledger.start_run(station, model, "folder:/a", lot='=HYPERLINK("http://x","y")')
    probabilities = {"@sum": 0.5, "-x": 0.25, "ok": 0.25}
    ledger.add_results([record(run, 0, 0, "NG", "+cmd", probabilities=probabilities, ood_score=-0.5)])
    buffer = io.StringIO()
    assert ledger.export_csv(buffer, ResultFilter()) == 1
    header, cells = list(csv.reader(io.StringIO(buffer.getvalue())))
    row = dict(zip(header, cells, strict=True))
    assert row["lot"] == '\'=HYPERLINK("http://x","y")'
    assert row["label"] == "'+cmd"
    assert row["ood_score"] == "-0.5", "a real number stays a number"
    assert [row["prob_@sum"], row["prob_-x"]] == ["0.5", "0.25"]
