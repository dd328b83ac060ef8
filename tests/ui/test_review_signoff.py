"""Review with accounts (issue 27): a class change is signed with the password, the part's audit rows
show their signers, and a role that may not review is refused by the backend in one line."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

pytest.importorskip("pytestqt")

from access_support import PASSWORDS, add_three, cheap_hashing  # noqa: F401 - a fixture
from ledger_support import record
from PySide6.QtCore import Qt, QThreadPool

from inspector.access import Actor
from inspector.store import Ledger
from ui.context import AppContext
from ui.review import ReviewView
from ui.signature_dialog import SignatureDialog

WAIT_MS = 20_000
NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def ledger_url(tmp_path, cheap_hashing):  # noqa: F811 - the fixture imported above
    """Four NG parts the model called scratch, and the three accounts."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger(url) as ledger:
        station = ledger.ensure_station("line-1")
        model = ledger.ensure_model_version("a" * 64, "demo-ltm", {}, {})
        run = ledger.start_run(station, model, "sim", lot="L1")
        records = []
        for i in range(4):
            rec = record(run, i, 0, "NG", "scratch")
            rec.captured_at = NOW - timedelta(minutes=i + 1)
            records.append(rec)
        ledger.add_results(records)
    add_three(url)
    return url


def _view(qtbot, tmp_path, url: str, actor: Actor | None) -> ReviewView:
    context = AppContext(tmp_path / "home")
    context.settings.db_url = url
    if actor is not None:
        context.accounts, context.actor = True, actor
    view = ReviewView(context)
    view.set_actor(context.actor)
    qtbot.addWidget(view)
    view.resize(1366, 768)
    view.show()
    qtbot.waitUntil(lambda: view.model.total == 4 and view.model.rowCount() == 4, timeout=WAIT_MS)
    view.table.setFocus()
    return view


def _close(view: ReviewView) -> None:
    view.close()
    QThreadPool.globalInstance().waitForDone(30_000)
    view.context.close()


def _audit(url: str, result_id: int) -> list[dict]:
    with Ledger(url) as ledger:
        return ledger.audit_rows(subject=f"result {result_id}")


def test_a_class_change_is_signed_and_its_signer_listed(qtbot, tmp_path, ledger_url):
    view = _view(qtbot, tmp_path, ledger_url, Actor("bo", "qa"))
    try:
        assert view.reviewer.text() == "bo" and view.reviewer.isReadOnly()
        row = view.selected_row()
        qtbot.keyClick(view.table, Qt.Key.Key_3)  # spot
        view.reason_dialog.reason.setText("round mark: a spot")
        view.reason_dialog.accept()
        dialog = view.signature_dialog
        assert isinstance(dialog, SignatureDialog) and dialog.isVisible()
        assert dialog.windowTitle() == "Sign: class changed by QA"
        assert "scratch → spot" in dialog.subject.text()

        dialog.password.setText("not-bos-password")
        dialog.submit()
        qtbot.waitUntil(lambda: not dialog.checking, timeout=WAIT_MS)
        assert dialog.isVisible() and dialog.message.text() == "wrong user name or password"
        QThreadPool.globalInstance().waitForDone(10_000)
        assert _audit(ledger_url, row["id"]) == []  # nothing written on a wrong password

        dialog.password.setText(PASSWORDS["bo"])
        dialog.submit()
        qtbot.waitUntil(lambda: bool(view.model.rows[0].get("reviewed")), timeout=WAIT_MS)
        (audit,) = _audit(ledger_url, row["id"])
        assert (audit["actor"], audit["signed"], audit["meaning"]) == ("bo", True, "class changed by QA")
        assert audit["detail"] == {"old_label": "scratch", "new_label": "spot"}

        view.select(0)
        qtbot.waitUntil(
            lambda: view.history.count() == 1 and "bo" in view.history.item(0).text(), timeout=WAIT_MS
        )
        text = view.history.item(0).text()
        assert "scratch → spot" in text and "✍ signed “class changed by QA”" in text and "round mark" in text

        # A confirmation is not a signed record: no dialog, listed as not signed.
        view.select(1)
        qtbot.keyClick(view.table, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: bool(view.model.rows[1].get("reviewed")), timeout=WAIT_MS)
        (confirmed,) = _audit(ledger_url, view.model.rows[1]["id"])
        assert confirmed["signed"] is False and confirmed["actor"] == "bo"
    finally:
        _close(view)


def test_cancelling_the_signature_writes_nothing(qtbot, tmp_path, ledger_url):
    view = _view(qtbot, tmp_path, ledger_url, Actor("ana", "engineer"))
    try:
        row = view.selected_row()
        qtbot.keyClick(view.table, Qt.Key.Key_1)  # ok
        view.reason_dialog.reason.setText("dust")
        view.reason_dialog.accept()
        view.signature_dialog.reject()
        QThreadPool.globalInstance().waitForDone(10_000)
        assert _audit(ledger_url, row["id"]) == [] and not view.model.rows[0].get("reviewed")
    finally:
        _close(view)


def test_an_operator_may_not_review_and_the_backend_says_so(qtbot, tmp_path, ledger_url):
    view = _view(qtbot, tmp_path, ledger_url, Actor("cy", "operator"))
    try:
        assert not view.confirm_button.isEnabled()  # offered to no one who may not
        assert not view.csv_button.isEnabled() and not view.report_button.isEnabled()
        row = view.selected_row()
        qtbot.keyClick(view.table, Qt.Key.Key_Return)  # the keys still reach the backend, which refuses
        qtbot.waitUntil(lambda: "not saved" in view.last_message, timeout=WAIT_MS)
        assert "reviewing results needs the qa or engineer role (cy is operator)" in view.last_message
        assert _audit(ledger_url, row["id"]) == []
    finally:
        _close(view)


def test_without_accounts_a_change_is_written_unsigned_as_before(qtbot, tmp_path):
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    with Ledger(url) as ledger:
        station = ledger.ensure_station("line-1")
        model = ledger.ensure_model_version("a" * 64, "demo-ltm", {}, {})
        run = ledger.start_run(station, model, "sim")
        rows = [record(run, i, 0, "NG", "scratch") for i in range(4)]
        for i, rec in enumerate(rows):
            rec.captured_at = NOW - timedelta(minutes=i + 1)
        ledger.add_results(rows)
    view = _view(qtbot, tmp_path, url, None)
    try:
        view.reviewer.setText("qa-anna")
        assert not view.reviewer.isReadOnly()
        row = view.selected_row()
        assert view.override(2, reason="round mark")
        assert view.signature_dialog is None
        qtbot.waitUntil(lambda: bool(view.model.rows[0].get("reviewed")), timeout=WAIT_MS)
        (audit,) = _audit(url, row["id"])
        assert (audit["actor"], audit["signed"], audit["meaning"]) == ("qa-anna", False, "class changed")
    finally:
        _close(view)


def test_exports_are_refused_to_an_operator_below_the_screen(qtbot, tmp_path, ledger_url):
    from inspector.access import AccessDenied
    from inspector.store import ResultFilter
    from ui.review import jobs

    context = AppContext(tmp_path / "home")
    context.settings.db_url = ledger_url
    context.accounts, context.actor = True, Actor("cy", "operator")
    try:
        with pytest.raises(AccessDenied, match="exporting results needs the qa or engineer role"):
            jobs.export_csv(context, ResultFilter(), tmp_path / "out.csv")
        assert not (tmp_path / "out.csv").exists()
        context.actor = Actor("bo", "qa")
        assert jobs.export_csv(context, ResultFilter(), tmp_path / "out.csv") == 4
    finally:
        context.close()
