"""QA's Review screen, driven offscreen: filters, paging, keyboard reviews, exports, a million rows."""

from __future__ import annotations

import csv
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

import cv2
import numpy as np
from ledger_support import record
from PySide6.QtCore import Qt, QThreadPool, QTimer

from data.station import load_station
from inspector.errors import InspectorError
from inspector.store import Ledger, ResultFilter, upgrade
from inspector.store.station_export import export_station_dataset
from ui.context import AppContext
from ui.review import CAPTURED, PAGE, QA_LABEL, ReviewView

N_ROWS = 300
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _kind(i: int) -> tuple[str, str]:
    if i % 3 == 0:
        return "NG", "scratch"
    if i % 7 == 1:
        return "UNSURE", "spot"
    return "OK", "ok"


def _write_png(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 255, (32, 32), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)


@pytest.fixture
def seeded(tmp_path):
    """A home with a ledger of 300 results (lots L1/L2, one every 3 minutes back from now).

    Every 10th result has an archived image; returns (home, url, ids of results with images).
    """
    home = tmp_path / "home"
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with_images: list[int] = []
    with Ledger(url) as ledger:
        station = ledger.ensure_station("line-1")
        model = ledger.ensure_model_version("a" * 64, "demo-ltm", {}, {})
        runs = [ledger.start_run(station, model, "sim", lot=lot) for lot in ("L1", "L2")]
        records = []
        for i in range(N_ROWS):
            verdict, label = _kind(i)
            ref = None
            if i % 10 == 0:
                ref = f"{verdict.lower()}/{i:02x}/img{i}.png"
                _write_png(home / "archive" / ref, i)
            rec = record(
                runs[i % 2], i, 0, verdict, label, image_ref=ref, truth=label if i % 4 == 0 else None
            )
            rec.captured_at = NOW - timedelta(minutes=3 * i + 1)
            records.append(rec)
        ledger.add_results(records)
        for row in ledger.query_results(ResultFilter(), limit=1000):
            if row["image_ref"]:
                with_images.append(row["id"])
    return home, url, with_images


def _open(qtbot, home: Path, url: str, operator: str = "qa-anna") -> ReviewView:
    context = AppContext(home)
    context.settings.db_url = url
    context.settings.operator = operator
    view = ReviewView(context)
    qtbot.addWidget(view)
    view.resize(1366, 768)
    return view


@pytest.fixture
def review(qtbot, seeded):
    home, url, _ = seeded
    view = _open(qtbot, home, url)
    view.show()
    yield view
    view.close()
    QThreadPool.globalInstance().waitForDone(30_000)
    view.context.close()


def _settle(qtbot, view: ReviewView) -> None:
    """Wait until the newest query's count and first page are in."""
    qtbot.waitUntil(
        lambda: (
            view.model.total is not None
            and not view.model.loading
            and view.model.rowCount() == min(view.model.total, PAGE)
        ),
        timeout=20_000,
    )


def _choose(view: ReviewView, **choices: str) -> None:
    combos = {
        "time": view.time_range,
        "verdict": view.verdict,
        "review": view.review_state,
        "klass": view.class_filter,
        "model": view.model_filter,
    }
    for name, text in choices.items():
        if name == "lot":
            view.lot.setCurrentText(text)
            view.refresh()  # typing waits for a pause; the test does not
        else:
            combo = combos[name]
            index = combo.findText(text)
            assert index >= 0, (name, text)
            combo.setCurrentIndex(index)


def _expected(predicate) -> int:
    return sum(1 for i in range(N_ROWS) if predicate(i))


def _history(url: str, result_id: int) -> list[dict]:
    with Ledger(url) as ledger:
        return ledger.history(result_id)


def test_opens_on_the_qa_queue_and_filters_narrow_the_count(qtbot, review):
    _settle(qtbot, review)
    queue = _expected(lambda i: _kind(i)[0] in ("NG", "UNSURE"))
    assert review.model.total == queue  # default: NG + UNSURE, not reviewed
    assert review.count_label.text() == f"{queue:,} results"

    _choose(review, verdict="All verdicts", review="Any review state")
    _settle(qtbot, review)
    assert review.model.total == N_ROWS

    _choose(review, verdict="NG")
    _settle(qtbot, review)
    assert review.model.total == _expected(lambda i: _kind(i)[0] == "NG")
    assert {row["verdict"] for row in review.model.rows} == {"NG"}

    # One result every 3 minutes, the first a minute before NOW (set when the module was imported,
    # which in a full run is minutes before this test): the 8 h window is counted from query time.
    before = (datetime.now(timezone.utc) - NOW).total_seconds() / 60
    _choose(review, time="Last 8 h")
    _settle(qtbot, review)
    after = (datetime.now(timezone.utc) - NOW).total_seconds() / 60
    assert review.model.total in {
        _expected(lambda i, late=late: _kind(i)[0] == "NG" and 3 * i + 1 + late < 8 * 60)
        for late in (before, after)
    }

    _choose(review, time="All time", verdict="All verdicts", lot="L2")
    _settle(qtbot, review)
    assert review.model.total == N_ROWS // 2
    assert {row["lot"] for row in review.model.rows} == {"L2"}

    _choose(review, lot="All lots", klass="spot")
    _settle(qtbot, review)
    assert review.model.total == _expected(lambda i: _kind(i)[1] == "spot")

    _choose(review, klass="All classes", model="v1 · demo-ltm")
    _settle(qtbot, review)
    assert review.model.total == N_ROWS

    _choose(review, review="Reviewed")
    _settle(qtbot, review)
    assert review.model.total == 0
    assert "nothing matches" in review.loaded_label.text()


def test_custom_range_and_oldest_first(qtbot, review):
    from PySide6.QtCore import QDateTime

    _choose(review, verdict="All verdicts", review="Any review state", time="Custom range")
    assert review.date_from.isVisibleTo(review)
    review.date_from.setDateTime(QDateTime((NOW - timedelta(hours=2)).astimezone()))
    review.date_to.setDateTime(QDateTime((NOW + timedelta(minutes=5)).astimezone()))
    assert review._filter_timer.isActive()  # typing a date waits for a pause; the test does not
    review.refresh()
    _settle(qtbot, review)
    assert review.model.total == _expected(lambda i: 3 * i + 1 <= 120)
    newest = review.model.rows[0]["captured_at"]
    review.table.horizontalHeader().sectionClicked.emit(CAPTURED)  # the Captured header: flip the order
    _settle(qtbot, review)
    assert review.order.currentText() == "Oldest first"
    assert review.model.rows[0]["captured_at"] < newest


def test_scrolling_to_the_bottom_fetches_the_next_page(qtbot, review):
    _choose(review, verdict="All verdicts", review="Any review state")
    _settle(qtbot, review)
    assert review.model.rowCount() == PAGE
    assert review.model.canFetchMore()
    review.table.scrollToBottom()
    qtbot.waitUntil(lambda: review.model.rowCount() == N_ROWS, timeout=20_000)
    assert not review.model.canFetchMore()
    assert len({row["id"] for row in review.model.rows}) == N_ROWS
    times = [row["captured_at"] for row in review.model.rows]
    assert times == sorted(times, reverse=True)


def test_keyboard_confirm_writes_a_review_and_moves_on(qtbot, review, seeded):
    url = seeded[1]
    _settle(qtbot, review)
    review.table.setFocus()
    first = review.selected_row()
    assert first is not None and review.table.currentIndex().row() == 0
    qtbot.keyClick(review.table, Qt.Key.Key_Return)
    assert review.table.currentIndex().row() == 1  # at once: QA never waits for the disk
    qtbot.waitUntil(lambda: review.model.rows[0].get("reviewed"), timeout=20_000)
    history = _history(url, first["id"])
    assert [(h["reviewer"], h["old_label"], h["new_label"], h["reason"]) for h in history] == [
        ("qa-anna", first["label"], first["label"], "")
    ]
    assert review.model.data(review.model.index(0, 0)) == "✓"
    assert review.model.rows[0]["reviewed_label"] == first["label"]

    qtbot.keyClick(review.table, Qt.Key.Key_N)
    qtbot.keyClick(review.table, Qt.Key.Key_P)
    assert review.table.currentIndex().row() == 1
    second = review.selected_row()
    qtbot.keyClick(review.table, Qt.Key.Key_C)
    qtbot.waitUntil(lambda: review.model.rows[1].get("reviewed"), timeout=20_000)
    assert len(_history(url, second["id"])) == 1


def test_no_review_without_a_reviewer_name(qtbot, seeded):
    home, url, _ = seeded
    view = _open(qtbot, home, url, operator="")
    view.show()
    try:
        _settle(qtbot, view)
        row = view.selected_row()
        qtbot.keyClick(view.table, Qt.Key.Key_Space)
        assert "name" in view.last_message
        assert view.reviewer.objectName() == "missing"
        QThreadPool.globalInstance().waitForDone(10_000)
        assert _history(url, row["id"]) == []
    finally:
        view.close()
        QThreadPool.globalInstance().waitForDone(30_000)
        view.context.close()


def test_override_needs_a_reason_and_is_audited(qtbot, review, seeded):
    url = seeded[1]
    _choose(review, verdict="NG")
    _settle(qtbot, review)
    row = review.selected_row()
    assert row["label"] == "scratch"
    assert review.classes_for(row) == ["ok", "scratch", "spot"]

    # Key 3 = spot: a reason is asked for; an empty one is refused and nothing is written.
    qtbot.keyClick(review.table, Qt.Key.Key_3)
    dialog = review.reason_dialog
    assert dialog is not None and dialog.isVisible()
    ok = dialog.buttons.buttons()[0]
    assert not ok.isEnabled()
    dialog.accept()
    assert dialog.isVisible() and "reason" in dialog.problem.text()
    dialog.reject()
    assert not review.override(2, reason="   ")
    QThreadPool.globalInstance().waitForDone(10_000)
    assert _history(url, row["id"]) == []
    assert review.selected_row()["id"] == row["id"]

    # With a reason: written, audited old → new, and the table shows the change.
    qtbot.keyClick(review.table, Qt.Key.Key_3)
    dialog = review.reason_dialog
    dialog.reason.setText("round mark, not a line: a spot")
    dialog.accept()
    qtbot.waitUntil(lambda: review.model.rows[0].get("reviewed"), timeout=20_000)
    history = _history(url, row["id"])
    assert [(h["old_label"], h["new_label"], h["reason"]) for h in history] == [
        ("scratch", "spot", "round mark, not a line: a spot")
    ]
    assert review.model.data(review.model.index(0, QA_LABEL)) == "spot"
    assert review.table.currentIndex().row() == 1

    # Back on the row, its audit trail is listed.
    review.select(0)
    qtbot.waitUntil(lambda: review.history.count() == 1 and "→ spot" in review.history.item(0).text())
    assert "round mark" in review.history.item(0).text()


def test_selected_part_shows_its_image_or_says_it_is_missing(qtbot, review, seeded):
    home, _, with_images = seeded
    _choose(review, verdict="All verdicts", review="Any review state")
    _settle(qtbot, review)
    review.select(review.model.index_of[with_images[0]])
    qtbot.waitUntil(lambda: review.image.image is not None, timeout=20_000)
    assert review.image.image.width() == 32
    assert review.facts["Result"].text().startswith(f"#{with_images[0]} · run ")
    assert [key.isVisibleTo(review) for key, _, _ in review.class_rows[:4]] == [True, True, True, False]

    missing = next(row for row in review.model.rows if row["image_ref"] is None)
    review.select(review.model.index_of[missing["id"]])
    qtbot.waitUntil(lambda: "No image archived" in review.image.text(), timeout=20_000)

    ref = review.model.row_at(review.model.index_of[with_images[1]])["image_ref"]
    (home / "archive" / ref).unlink()
    review.select(review.model.index_of[with_images[1]])
    qtbot.waitUntil(lambda: "missing" in review.image.text(), timeout=20_000)


def test_csv_export_writes_the_filtered_results(qtbot, review, tmp_path):
    _choose(review, verdict="NG", review="Any review state")
    _settle(qtbot, review)
    target = tmp_path / "out" / "ng.csv"
    review.export_csv(target)
    qtbot.waitUntil(lambda: "Exported" in review.last_message, timeout=20_000)
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == review.model.total
    assert {row["verdict"] for row in rows} == {"NG"}
    assert not [p for p in target.parent.iterdir() if p.name != "ng.csv"]  # no temp file left


def test_report_of_the_filters_lot_is_written_by_a_background_job(qtbot, review, tmp_path):
    _choose(review, review="Any review state", lot="L1")
    _settle(qtbot, review)
    assert review.report_window("filters").lot == "L1"
    assert review.report_window("last").title.startswith("Shift ")
    target = tmp_path / "reports" / "l1.pdf"
    review.make_report("filters", target)
    assert not review.report_button.isEnabled()
    qtbot.waitUntil(lambda: review.report_button.isEnabled(), timeout=180_000)
    assert "Report written" in review.last_message and "150 parts" in review.last_message
    assert target.read_bytes().startswith(b"%PDF")


def _review_images(url: str, ids: list[int]) -> None:
    """Label the parts with images alternately ok / scratch, as QA would."""
    with Ledger(url) as ledger:
        for n, result_id in enumerate(ids):
            label = ("ok", "scratch")[n % 2]
            row = ledger.get_result(result_id)
            reason = "" if row["label"] == label else "checked under the lamp"
            ledger.review(result_id, label, "qa-anna", reason)


def test_station_dataset_export_loads_as_a_station(qtbot, review, seeded, tmp_path):
    home, url, with_images = seeded
    _review_images(url, with_images)
    _choose(review, verdict="All verdicts", review="Reviewed")
    _settle(qtbot, review)
    assert review.model.total == len(with_images)
    out = tmp_path / "station"
    review.export_station(out)
    qtbot.waitUntil(
        lambda: "written" in review.last_message or "failed" in review.last_message, timeout=30_000
    )
    assert "Station dataset written" in review.last_message, review.last_message
    station = load_station(out)
    assert station.classes == ["ok", "scratch"]
    assert len(station.samples) == len(with_images)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.csv", "ok", "scratch"]
    with (out / "manifest.csv").open(newline="") as handle:
        manifest = list(csv.DictReader(handle))
    assert set(manifest[0]) >= {"path", "label", "group"}
    assert (out / manifest[0]["path"]).is_file()


def test_station_export_refuses_a_used_folder_and_leaves_nothing_on_failure(seeded, tmp_path, monkeypatch):
    home, url, with_images = seeded
    _review_images(url, with_images)
    (home / "archive" / "ng" / "00" / "img0.png").unlink()  # result 0's image is gone
    used = tmp_path / "used"
    used.mkdir()
    (used / "x.txt").write_text("mine")
    with Ledger(url) as ledger:
        with pytest.raises(InspectorError, match="not an empty folder"):
            export_station_dataset(ledger, ResultFilter(), home / "archive", used)
        assert (used / "x.txt").read_text() == "mine"

        count, warnings = export_station_dataset(ledger, ResultFilter(), home / "archive", tmp_path / "a")
        assert count == len(with_images) - 1
        assert any("skipped" in w for w in warnings)
        assert any("grouped by identical image" in w for w in warnings)

        import inspector.store.station_export as module

        calls = []

        def failing_copy(source, target):
            calls.append(source)
            if len(calls) == 3:
                raise OSError(28, "No space left on device")
            module.shutil.copyfile(source, target)

        monkeypatch.setattr(module, "_copy_png", failing_copy)
        with pytest.raises(InspectorError, match="No space left"):
            export_station_dataset(ledger, ResultFilter(), home / "archive", tmp_path / "b")
    assert not (tmp_path / "b").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".b.")]


def test_station_export_groups_by_run_when_there_are_enough_runs(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    archive = tmp_path / "archive"
    with Ledger(url) as ledger:
        station = ledger.ensure_station("line-1")
        model = ledger.ensure_model_version("b" * 64, "m", {}, {})
        runs = [ledger.start_run(station, model, "sim", lot=f"L{n}") for n in range(5)]
        records = []
        for i in range(30):
            _write_png(archive / f"ng/x/{i}.png", 100 + i)
            records.append(record(runs[i % 5], i, i, "NG", "scratch", image_ref=f"ng/x/{i}.png"))
        ledger.add_results(records)
        for n, row in enumerate(ledger.query_results(ResultFilter(), limit=100)):
            label = ("scratch", "ok")[n % 2]
            ledger.review(row["id"], label, "qa", "" if label == "scratch" else "clean part")
        count, warnings = export_station_dataset(ledger, ResultFilter(), archive, tmp_path / "ds")
    assert count == 30 and warnings == []
    station = load_station(tmp_path / "ds")
    assert {s.group for s in station.samples} == {f"run-{r}" for r in runs}
    by_group: dict[str, set[str]] = {}
    for sample in station.samples:
        by_group.setdefault(sample.group, set()).add(sample.split)
    assert all(len(splits) == 1 for splits in by_group.values())  # a run never straddles splits


# -- a million results -------------------------------------------------------------------------

MILLION = 1_000_000


def _million_row_ledger(tmp_path: Path) -> tuple[str, int]:
    """A ledger with 1,000,000 results (1 per second up to now), built in SQL in a few seconds."""
    path = tmp_path / "big.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    with Ledger(url) as ledger:
        station = ledger.ensure_station("line-1")
        model = ledger.ensure_model_version("c" * 64, "m", {}, {})
        run = ledger.start_run(station, model, "sim", lot="BIG")
    start = int(time.time()) - MILLION
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        with connection:
            connection.execute(
                """
                WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < ? - 1)
                INSERT INTO results (run_id, frame_index, captured_at, verdict, label, confidence,
                    probabilities, ood_score, latency_queue_ms, latency_infer_ms, latency_total_ms,
                    image_ref, truth, reviewed, reviewed_label, error)
                SELECT ?, n, strftime('%Y-%m-%d %H:%M:%S', ? + n, 'unixepoch') || '.000000',
                    CASE n % 10 WHEN 0 THEN 'NG' WHEN 1 THEN 'UNSURE' ELSE 'OK' END,
                    CASE n % 10 WHEN 0 THEN 'crack' ELSE 'ok' END,
                    0.9, '{"ok": 0.9, "crack": 0.1}', 0.2, 1.0, 6.0, 8.0, NULL, NULL, 0, NULL, NULL
                FROM seq
                """,
                (MILLION, run, start),
            )
    finally:
        connection.close()
    return url, MILLION // 5  # NG + UNSURE: two in ten


def test_opens_on_a_million_row_ledger_without_blocking_the_event_loop(qtbot, tmp_path):
    started = time.monotonic()
    url, queue = _million_row_ledger(tmp_path)
    built = time.monotonic() - started

    view = _open(qtbot, tmp_path / "home", url)
    gaps: list[float] = []
    last = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        gaps.append(now - last[0])
        last[0] = now

    ticker = QTimer()
    ticker.setInterval(20)
    ticker.timeout.connect(tick)
    try:
        view.show()  # first sight: opens the ledger and queries in workers
        last[0] = time.monotonic()
        ticker.start()
        qtbot.waitUntil(
            lambda: view.model.rowCount() == PAGE and view.model.total is not None, timeout=120_000
        )
        ticker.stop()
        assert view.model.total == queue
        assert view.count_label.text() == f"{queue:,} results"
        assert view.model.rows[0]["captured_at"] >= view.model.rows[-1]["captured_at"]
        # The condition, not a timing: the event loop kept turning (the timer fired) while the count
        # and the first page were fetched, so they ran in workers. How long it took is printed here
        # and measured by benchmarks/ledger_speed.py, not asserted.
        assert len(gaps) >= 3
        waited, worst = sum(gaps) * 1000, max(gaps) * 1000
        print(f"\nledger built in {built:.1f} s; first page after {waited:.0f} ms; max gap {worst:.0f} ms")
    finally:
        view.close()
        QThreadPool.globalInstance().waitForDone(60_000)
        view.context.close()
