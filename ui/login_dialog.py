"""The login: who is at the line PC, asked at start (once accounts exist) and after an idle lock.

The check itself is :func:`inspector.access.login` (argon2 takes a moment, and the ledger may be a
PostgreSQL server across the plant), so it runs in a worker and the dialog stays responsive. A
refusal — a wrong password, an account locked after repeated failures, a disabled account — is the
backend's one line, shown in the dialog; the password field is emptied after every try so the
secret is never kept in the widget longer than one attempt.

At start the person may quit instead; over a locked window there is no way round it but to sign
in (any account may: the next shift's person takes over the seat).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from inspector.access import Actor, login
from ui.workers import run_task

ERROR_STYLE = "color: #c62828;"
TITLE_STYLE = "font-size: 20px; font-weight: 700;"
SHARED_NOTE = "Accounts are kept in the results ledger: the same name and password on every station."


class LoginDialog(QDialog):
    """Name and password, checked by the ledger; ``actor`` is set when it accepts.

    ``locked``: the window behind is locked (idle or "Lock"): no Cancel, Escape does nothing.
    """

    def __init__(
        self,
        ledger_url: str,
        where: str,
        *,
        name: str = "",
        locked: bool = False,
        note: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.ledger_url = ledger_url
        self.locked = locked
        self.actor: Actor | None = None
        self.checking = False
        self.setWindowTitle("LTM Inspector — locked" if locked else "LTM Inspector — sign in")
        self.setMinimumWidth(440)

        title = QLabel("Locked" if locked else "Sign in")
        title.setStyleSheet(TITLE_STYLE)
        self.note = QLabel(note or SHARED_NOTE)
        self.note.setObjectName("hint")
        self.note.setWordWrap(True)
        self.name = QLineEdit(name)
        self.name.setPlaceholderText("user name")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("password")
        self.message = QLabel("")
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.setWordWrap(True)
        self.message.hide()
        where_label = QLabel(f"Ledger: {where}")
        where_label.setObjectName("hint")
        where_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        buttons = QDialogButtonBox()
        self.sign_in_button = buttons.addButton("Sign in", QDialogButtonBox.ButtonRole.AcceptRole)
        self.sign_in_button.setDefault(True)
        self.sign_in_button.clicked.connect(self.submit)
        if not locked:
            quit_button = buttons.addButton("Quit", QDialogButtonBox.ButtonRole.RejectRole)
            quit_button.clicked.connect(self.reject)

        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Password", self.password)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(self.note)
        layout.addSpacing(6)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        layout.addWidget(where_label)
        (self.password if name else self.name).setFocus()

    def submit(self) -> None:
        """Check the name and password in a worker; accept on success, else say why in one line."""
        if self.checking:
            return
        name = self.name.text().strip()
        password = self.password.text()
        if not name or not password:
            self.say("Enter your name and your password.")
            (self.password if name else self.name).setFocus()
            return
        self.checking = True
        self.sign_in_button.setEnabled(False)
        self.say("")
        self.password.clear()
        run_task(login, self.ledger_url, name, password, on_done=self._signed_in, on_failed=self._refused)

    def _signed_in(self, actor: Actor) -> None:
        self.checking = False
        self.sign_in_button.setEnabled(True)
        self.actor = actor
        self.accept()

    def _refused(self, message: str) -> None:
        self.checking = False
        self.sign_in_button.setEnabled(True)
        self.say(message)  # the backend's line as it is (it may start with a user name)
        self.password.setFocus()

    def say(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # A locked window has no way round the login: Escape and the close button do nothing.

    def reject(self) -> None:
        if not self.locked:
            super().reject()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # Qt's name
        if self.locked and event.key() == Qt.Key.Key_Escape:
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # Qt's name
        if self.locked:
            event.ignore()
            return
        super().closeEvent(event)
