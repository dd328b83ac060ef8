"""Audit rows about one subject: what the Review screen lists as a part's signers (issue 27)."""

from __future__ import annotations

import pytest
from ledger_support import BACKENDS, database_url

from inspector.store import Ledger


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path):
    with database_url(request.param, tmp_path) as value:
        yield value


def test_audit_rows_about_one_subject_only(url):
    with Ledger(url) as ledger:
        ledger.append_audit("review", "bo", "result 7", "scratch", signed=True, meaning="class changed by QA")
        ledger.append_audit("review", "bo", "result 70", "")
        ledger.append_audit("deploy", "ana", "model v2", "lamp swapped", signed=True, meaning="approved")
        ledger.append_audit("review", "ana", "result 7", "")
        rows = ledger.audit_rows(subject="result 7")
        assert [(r["actor"], r["signed"]) for r in rows] == [("ana", False), ("bo", True)]  # newest first
        assert rows[1]["meaning"] == "class changed by QA"
        assert ledger.audit_rows(subject="result 8") == []
        assert len(ledger.audit_rows(kinds=("review",))) == 3
