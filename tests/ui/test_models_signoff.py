"""Models with accounts (issue 27): deploy and roll back are signed with the password and the meaning
shown; the signed actor reaches the job as plain values; a role that may not is refused by the backend."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from access_support import PASSWORDS, add_three, cheap_hashing  # noqa: F401 - a fixture
from PySide6.QtWidgets import QInputDialog

from inspector.access import Actor
from inspector.registry import Registry
from inspector.store import Ledger, default_url
from models.bundle import meta_for, save_bundle
from models.network import InspectionNet
from ui.context import AppContext
from ui.models_view import ModelsView, acting_for
from ui.signature_dialog import SignatureDialog

WAIT_MS = 180_000  # a job's own process starts slowly on a busy 2-core machine


@pytest.fixture
def home(tmp_path, tiny_vit_spec, cheap_hashing, monkeypatch) -> Path:  # noqa: F811 - the fixture
    """Two registered versions (v1 deployed), three accounts; every reason asked is answered."""
    home = tmp_path / "home"
    registry = Registry(home)
    for name in ("a", "b"):
        net = InspectionNet(tiny_vit_spec, 2, "none")
        registry.add(save_bundle(net, meta_for(net, ["ok", "ng"]), tmp_path / name), note=name)
    registry.deploy("v1")
    add_three(default_url(home))
    monkeypatch.setattr(QInputDialog, "getText", lambda *_a, **_k: ("lamp swapped", True))
    return home


def _view(qtbot, home: Path, actor: Actor) -> ModelsView:
    context = AppContext(home)
    context.accounts, context.actor = True, actor
    view = ModelsView(context)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.reloads > 0, timeout=WAIT_MS)
    return view


def _sign(qtbot, dialog: SignatureDialog, password: str) -> None:
    dialog.password.setText(password)
    dialog.submit()
    qtbot.waitUntil(lambda: not dialog.checking, timeout=20_000)


def _audit(home: Path, kind: str) -> list[dict]:
    with Ledger(default_url(home)) as ledger:
        return ledger.audit_rows(kinds=(kind,))


def test_an_engineer_signs_a_deploy_and_a_rollback(qtbot, home):
    view = _view(qtbot, home, Actor("ana", "engineer"))
    assert view.deploy_button.isEnabled() and view.rollback_button.isEnabled()
    view.table.selectRow(0)  # v2, newest first
    view.deploy_button.click()
    dialog = view.signature_dialog
    assert dialog is not None and dialog.windowTitle() == "Sign: approved for deploy"
    assert "Deploy v2 in place of v1" in dialog.subject.text() and "lamp swapped" in dialog.subject.text()
    _sign(qtbot, dialog, "not-anas")
    assert dialog.isVisible() and dialog.message.text() == "wrong user name or password"
    assert not view.busy  # nothing started on a wrong password
    with qtbot.waitSignal(view.deployed_changed, timeout=WAIT_MS):
        _sign(qtbot, dialog, PASSWORDS["ana"])
    assert Registry(home).deployed().id == "v2"
    (deploy,) = _audit(home, "deploy")
    assert (deploy["actor"], deploy["signed"], deploy["meaning"]) == ("ana", True, "approved for deploy")

    count = view.reloads
    view.rollback_button.click()
    dialog = view.signature_dialog
    assert dialog.windowTitle() == "Sign: approved for rollback"
    with qtbot.waitSignal(view.deployed_changed, timeout=WAIT_MS):
        _sign(qtbot, dialog, PASSWORDS["ana"])
    qtbot.waitUntil(lambda: view.reloads > count, timeout=WAIT_MS)
    assert Registry(home).deployed().id == "v1"
    (rollback,) = _audit(home, "rollback")
    assert (rollback["actor"], rollback["signed"], rollback["meaning"]) == (
        "ana",
        True,
        "approved for rollback",
    )


def test_qa_is_offered_no_deploy_and_the_backend_refuses_it(qtbot, home):
    view = _view(qtbot, home, Actor("bo", "qa"))
    assert not view.deploy_button.isEnabled() and not view.rollback_button.isEnabled()
    assert "deploying and rolling back are an engineer's" in view.message.text()
    view.table.selectRow(0)
    view.deploy_selected()  # the double-click path: the screen does not decide, the backend does
    dialog = view.signature_dialog
    _sign(qtbot, dialog, PASSWORDS["bo"])
    assert (
        dialog.isVisible() and dialog.message.text() == "deploying a model needs the engineer role (bo is qa)"
    )
    assert Registry(home).deployed().id == "v1" and _audit(home, "deploy") == []


def test_the_job_gets_plain_values_never_a_password(tmp_path):
    context = AppContext(tmp_path)
    context.settings.operator = "line-lead"
    assert acting_for(context) == "line-lead"  # no accounts: the name, as before
    signed = Actor("ana", "engineer", signed=True)
    context.actor = Actor("ana", "engineer")
    assert acting_for(context, signed) is signed
    assert {f: getattr(signed, f) for f in ("name", "role", "signed")} == vars(signed)  # nothing else rides
