"""The audit trail's hash chain: intact after appends, broken at the right row after a direct edit."""

from __future__ import annotations

import threading

import pytest
from ledger_support import BACKENDS, T0, database_url
from sqlalchemy import create_engine, text

from inspector.store import Ledger, LedgerError, ResultFilter, ResultRecord


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path):
    with database_url(request.param, tmp_path) as value:
        yield value


def _three_rows(ledger: Ledger) -> list[int]:
    return [
        ledger.append_audit(
            "deploy", "ada", "model v2", "lamp swapped", signed=True, meaning="approved for deploy"
        ),
        ledger.append_audit(
            "review", "qa1", "result 7", "scratch, not dirt", detail={"old": "ok", "new": "scratch"}
        ),
        ledger.append_audit("rollback", "ada", "model v1", "false rejects"),
    ]


def _edit(url: str, sql: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(sql))
    engine.dispose()


def test_an_untouched_chain_verifies(url):
    with Ledger(url) as ledger:
        assert ledger.verify_audit().ok  # empty
        _three_rows(ledger)
        check = ledger.verify_audit()
        assert check.ok and check.rows == 3, check.text()
        rows = ledger.audit_rows()
        assert [r["kind"] for r in rows] == ["rollback", "review", "deploy"]
        assert rows[0]["prev_hash"] == rows[1]["hash"]


@pytest.mark.parametrize(
    "sql, bad",
    [
        ("UPDATE audit_log SET reason = 'nothing to see' WHERE id = {second}", "second"),
        ("UPDATE audit_log SET actor = 'someone else' WHERE id = {first}", "first"),
        ("DELETE FROM audit_log WHERE id = {second}", "third"),
        ("UPDATE audit_log SET signed = NOT signed WHERE id = {third}", "third"),
    ],
)
def test_a_direct_edit_is_named_by_row(url, sql, bad):
    with Ledger(url) as ledger:
        first, second, third = _three_rows(ledger)
    ids = {"first": first, "second": second, "third": third}
    _edit(url, sql.format(**ids))
    with Ledger(url) as ledger:
        check = ledger.verify_audit()
    assert not check.ok
    assert check.bad_id == ids[bad]
    assert f"row {ids[bad]}" in check.text()


def test_appends_from_several_threads_form_one_chain(url):
    with Ledger(url) as ledger:

        def worker(n: int) -> None:
            for i in range(5):
                ledger.append_audit("review", f"qa{n}", f"result {i}", "ok")

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        check = ledger.verify_audit()
    assert check.ok and check.rows == 20, check.text()


def test_a_review_and_its_audit_row_commit_together(url):
    with Ledger(url) as ledger:
        station = ledger.ensure_station("s1")
        model = ledger.ensure_model_version("ab" * 32, "m", {"classes": ["ok", "scratch"]}, {})
        run = ledger.start_run(station, model, source="test")
        ledger.add_results([ResultRecord(run, 0, T0, "NG", "scratch", 0.9, None, None, None, None, None)])
        (row,) = ledger.query_results(ResultFilter())
        with pytest.raises(LedgerError, match="needs a reason"):
            ledger.review(row["id"], "ok", "qa1")
        assert ledger.audit_rows() == []  # refused review: no audit row either
        ledger.review(row["id"], "ok", "qa1", "dust on the lens", signed=True, meaning="class changed")
        (audit,) = ledger.audit_rows()
        assert ledger.verify_audit().ok
    assert (audit["kind"], audit["actor"], audit["signed"], audit["subject"]) == (
        "review",
        "qa1",
        True,
        f"result {row['id']}",
    )
    assert audit["detail"] == {"old_label": "scratch", "new_label": "ok"}
