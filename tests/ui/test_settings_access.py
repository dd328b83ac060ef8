"""Settings with accounts (issue 27): the backend decides who may save which field, and audits it."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from access_support import add_three, cheap_hashing  # noqa: F401 - a fixture

from inspector.access import Actor
from inspector.settings import load_settings
from inspector.store import Ledger, default_url
from ui.context import AppContext
from ui.settings_view import SettingsView


def _view(qtbot, home, actor: Actor) -> SettingsView:
    context = AppContext(home)
    context.accounts, context.actor = True, actor
    view = SettingsView(context)
    qtbot.addWidget(view)
    return view


def test_qa_may_not_change_the_idle_lock_an_engineer_may(qtbot, tmp_path, cheap_hashing):  # noqa: F811
    add_three(default_url(tmp_path))
    view = _view(qtbot, tmp_path, Actor("bo", "qa"))
    view.idle_lock.setValue(5)
    assert not view.save()
    assert view.message.text() == "Changing settings needs the engineer role (bo is qa)"
    assert load_settings(tmp_path).idle_lock_minutes == 15

    view = _view(qtbot, tmp_path, Actor("ana", "engineer"))
    view.idle_lock.setValue(5)
    assert view.save()
    assert load_settings(tmp_path).idle_lock_minutes == 5 == view.context.settings.idle_lock_minutes
    with Ledger(default_url(tmp_path)) as ledger:
        (row,) = ledger.audit_rows(kinds=("settings",))
    assert row["actor"] == "ana" and row["detail"] == {"changed": ["idle_lock_minutes"]}
