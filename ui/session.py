"""Who is at the line PC: the login at start, the signed-in badge, Lock / Sign out and the idle lock.

With no accounts in the ledger the app is what it always was: the local user (the settings'
operator, else the login name) may do everything, no dialog opens and no badge shows. Once an
account exists the app asks for a login before its window opens, shows the person and their role
in the status bar, and covers the window with the login after ``idle_lock_minutes`` without input
or on "Lock". Covering only hides the screens: the line, its writer and any background job run on
underneath, and a different person may sign in over the lock (the next shift takes the seat).

The role decides what the screens offer (:func:`may`), but only as a courtesy: every change is
refused or allowed by :func:`inspector.access.require` below the screens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from inspector.access import AccessDenied, Actor, accounts_exist, require
from inspector.store import database
from inspector.store.errors import LedgerError
from ui.context import AppContext
from ui.idle_lock import IdleWatch
from ui.login_dialog import LoginDialog

ROLE_NAMES = {"operator": "Operator", "qa": "QA", "engineer": "Engineer"}
BADGE_STYLE = "font-weight: 700; padding: 0 6px;"
COVER_STYLE = "font-size: 22px; color: #5f6b7a;"


def may(actor: Actor, action: str) -> bool:
    """Whether ``actor``'s role allows ``action`` (a signature still to come counts as given)."""
    try:
        require(replace(actor, signed=True), action)
    except AccessDenied:
        return False
    return True


def where(db_url: str) -> str:
    """The ledger as a person may see it: never with its password."""
    try:
        return database.describe(database.parse_url(db_url))
    except LedgerError:
        return "(not a database URL)"


def sign_in_at_start(context: AppContext, parent: QWidget | None = None) -> Actor | None:
    """The actor the app starts with: the local user without accounts, else whoever logs in.

    None when the person quits the login instead. Runs before the main window exists (a modal
    dialog with its own event loop); a ledger that cannot be read raises its one-line error.
    """
    context.accounts = accounts_exist(context.db_url)
    if not context.accounts:
        return context.actor
    dialog = LoginDialog(context.db_url, where(context.db_url), name=context.settings.operator, parent=parent)
    if dialog.exec() != LoginDialog.DialogCode.Accepted or dialog.actor is None:
        return None
    context.actor = dialog.actor
    return dialog.actor


class SessionBadge(QWidget):
    """The status bar's right end: "● ana · QA" with Lock and Sign out (hidden without accounts)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("")
        self.label.setStyleSheet(BADGE_STYLE)
        self.lock_button = QPushButton("Lock")
        self.lock_button.setToolTip("Cover the app with the login now; the line keeps running")
        self.sign_out_button = QPushButton("Sign out")
        self.sign_out_button.setToolTip("End your session: the next person signs in; the line keeps running")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label)
        row.addWidget(self.lock_button)
        row.addWidget(self.sign_out_button)

    def show_actor(self, actor: Actor) -> None:
        role = ROLE_NAMES.get(actor.role or "", actor.role or "")
        self.label.setText(f"● Signed in: {actor.name} · {role}")
        self.label.setToolTip(f"{actor.name} is signed in with the {actor.role} role")
        self.setVisible(actor.role is not None)


class LockCover(QWidget):
    """What the window shows while locked: who was signed in, and that the line goes on."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QLabel("")
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text.setStyleSheet(COVER_STYLE)
        self.text.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.text)
        layout.addStretch(2)


class Session(QObject):
    """Lock, sign out and the idle lock for a main window; ``actor_changed`` tells the screens.

    ``cover(True)`` / ``cover(False)`` are the window's: they swap its screens for the cover.
    """

    actor_changed = Signal(object)

    def __init__(self, context: AppContext, cover: Callable[[bool], None], parent: QWidget) -> None:
        super().__init__(parent)
        self.context = context
        self.window = parent
        self._cover = cover
        self.badge = SessionBadge()
        self.badge.lock_button.clicked.connect(self.lock)
        self.badge.sign_out_button.clicked.connect(self.sign_out)
        self.cover_page = LockCover()
        self.dialog: LoginDialog | None = None
        self.idle = IdleWatch(lambda: context.settings.idle_lock_minutes if context.accounts else 0, self)
        self.idle.idle.connect(self.lock_idle)
        self.badge.show_actor(context.actor)

    @property
    def locked(self) -> bool:
        return self.dialog is not None

    def lock(self) -> None:
        self._lock(self.context.actor.name, f"Locked by {self.context.actor.name}.")

    def lock_idle(self) -> None:
        minutes = self.context.settings.idle_lock_minutes
        self._lock(self.context.actor.name, f"Locked after {minutes} min without input.")

    def sign_out(self) -> None:
        self._lock("", f"{self.context.actor.name} signed out.")

    def _lock(self, name: str, why: str) -> None:
        if self.locked or not self.context.accounts:
            return
        self.idle.pause()
        self.cover_page.text.setText(f"{why}\nThe line keeps running. Sign in to go on.")
        self._cover(True)
        dialog = LoginDialog(
            self.context.db_url,
            where(self.context.db_url),
            name=name,
            locked=True,
            note=f"{why} The line keeps running; any account may sign in.",
            parent=self.window,
        )
        dialog.setWindowModality(Qt.WindowModality.ApplicationModal)  # over any dialog already open
        dialog.accepted.connect(self._unlocked)
        self.dialog = dialog
        dialog.open()

    def _unlocked(self) -> None:
        dialog, self.dialog = self.dialog, None
        if dialog is None or dialog.actor is None:
            return
        changed = dialog.actor != self.context.actor
        self.context.actor = dialog.actor
        self.badge.show_actor(dialog.actor)
        self._cover(False)
        self.idle.resume()
        if changed:
            self.actor_changed.emit(dialog.actor)

    def close(self) -> None:
        """The window closes: stop watching input, let a lock's login go."""
        self.idle.stop()
        if self.dialog is not None:
            self.dialog.locked = False
            self.dialog.close()
            self.dialog = None
