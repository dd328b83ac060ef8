"""The app's login (issue 27): none without accounts; else at start and over a lock, refusals in one line."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from access_support import PASSWORDS, add_three, cheap_hashing  # noqa: F401 - a fixture
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication

from inspector.access import MAX_FAILED_LOGINS, Actor
from inspector.store import default_url
from ui.context import AppContext
from ui.login_dialog import LoginDialog
from ui.main_window import MainWindow
from ui.session import may, sign_in_at_start

WAIT_MS = 20_000


@pytest.fixture
def accounts_home(tmp_path, cheap_hashing):  # noqa: F811 - the fixture imported above
    home = tmp_path / "home"
    home.mkdir()
    add_three(default_url(home))
    return home


def _try(qtbot, dialog: LoginDialog, name: str, password: str) -> None:
    dialog.name.setText(name)
    dialog.password.setText(password)
    dialog.sign_in_button.click()
    assert dialog.password.text() == ""  # the secret leaves the widget at once
    qtbot.waitUntil(lambda: not dialog.checking, timeout=WAIT_MS)


def test_without_accounts_nothing_is_asked_and_no_badge_shows(qtbot, tmp_path):
    context = AppContext(tmp_path / "home")
    actor = sign_in_at_start(context)  # would block on a dialog if it opened one
    assert actor == context.actor and actor.role is None and not context.accounts
    window = MainWindow(context)
    qtbot.addWidget(window)
    assert window.session.badge.isHidden()
    window.session.lock()
    assert not window.session.locked  # nothing to lock with: the app of old


def test_wrong_password_is_one_line_then_the_right_one_signs_in(qtbot, accounts_home):
    dialog = LoginDialog(default_url(accounts_home), "sqlite")
    qtbot.addWidget(dialog)
    _try(qtbot, dialog, "bo", "not-it")
    assert dialog.result() != LoginDialog.DialogCode.Accepted and dialog.actor is None
    assert dialog.message.text() == "wrong user name or password"
    _try(qtbot, dialog, "nobody", "whatever")
    assert dialog.message.text() == "wrong user name or password"  # an unknown name reads the same
    _try(qtbot, dialog, "bo", PASSWORDS["bo"])
    assert dialog.actor == Actor("bo", "qa") and dialog.result() == LoginDialog.DialogCode.Accepted


def test_the_backends_lock_out_is_shown_in_the_dialog(qtbot, accounts_home):
    dialog = LoginDialog(default_url(accounts_home), "sqlite")
    qtbot.addWidget(dialog)
    for _ in range(MAX_FAILED_LOGINS):
        _try(qtbot, dialog, "cy", "wrong-again")
    assert "cy is now locked until" in dialog.message.text()
    _try(qtbot, dialog, "cy", PASSWORDS["cy"])  # even the right password, while locked
    assert dialog.actor is None and "cy is locked until" in dialog.message.text()
    assert "\n" not in dialog.message.text()


def test_start_asks_for_a_login_and_quitting_it_opens_nothing(qtbot, accounts_home):
    def answer(name: str, password: str | None) -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, LoginDialog)
        if password is None:
            dialog.reject()
            return
        dialog.name.setText(name)
        dialog.password.setText(password)
        dialog.submit()

    context = AppContext(accounts_home)
    QTimer.singleShot(0, lambda: answer("ana", None))
    assert sign_in_at_start(context) is None and context.accounts
    QTimer.singleShot(0, lambda: answer("ana", PASSWORDS["ana"]))
    assert sign_in_at_start(context) == Actor("ana", "engineer") == context.actor


def test_lock_covers_the_window_and_the_next_person_takes_over(qtbot, accounts_home):
    context = AppContext(accounts_home)
    context.accounts, context.actor = True, Actor("ana", "engineer")
    window = MainWindow(context)
    qtbot.addWidget(window)
    window.show()
    badge = window.session.badge
    assert badge.isVisible() and badge.label.text() == "● Signed in: ana · Engineer"
    assert window.review.reviewer.text() == "ana"

    window.session.lock()
    dialog = window.session.dialog
    assert dialog is not None and dialog.locked and dialog.name.text() == "ana"
    assert window.stack.currentWidget() is window.session.cover_page
    assert "The line keeps running" in window.session.cover_page.text.text()
    QApplication.sendEvent(
        dialog, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Escape, Qt.KeyboardModifier.NoModifier)
    )
    dialog.close()
    assert dialog.isVisible() and window.session.locked  # no way round the login

    with qtbot.waitSignal(window.session.actor_changed, timeout=WAIT_MS):
        _try(qtbot, dialog, "bo", PASSWORDS["bo"])
    assert not window.session.locked and window.stack.currentWidget() is window.tabs
    assert context.actor == Actor("bo", "qa") and badge.label.text() == "● Signed in: bo · QA"
    assert window.review.reviewer.text() == "bo"  # reviews are now bo's


def test_idle_locks_and_sign_out_empties_the_name(qtbot, accounts_home):
    context = AppContext(accounts_home)
    context.accounts, context.actor = True, Actor("cy", "operator")
    window = MainWindow(context)
    qtbot.addWidget(window)
    window.session.idle.idle.emit()  # what N minutes without input does
    assert window.session.locked and "without input" in window.session.cover_page.text.text()
    assert window.session.idle.paused
    _try(qtbot, window.session.dialog, "cy", PASSWORDS["cy"])
    assert not window.session.locked and not window.session.idle.paused
    window.session.badge.sign_out_button.click()
    assert window.session.locked and window.session.dialog.name.text() == ""


@pytest.mark.parametrize(
    "role, action, allowed",
    [
        (None, "deploy", True),
        ("operator", "run_line", True),
        ("operator", "review", False),
        ("qa", "change_class", True),
        ("qa", "deploy", False),
        ("engineer", "deploy", True),
    ],
)
def test_screens_offer_what_the_role_may_do(role, action, allowed):
    assert may(Actor("x", role), action) is allowed
