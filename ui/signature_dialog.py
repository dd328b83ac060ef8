"""Electronic signatures in the app: the person re-enters their password for one record.

A QA class change, a deploy, a rollback and a gate override are signed once accounts exist
(:data:`inspector.access.SIGNED_ACTIONS`): identity plus a secret, tied to the record with its
meaning ("approved for deploy"). The dialog shows who signs and what the signature means, checks
the password with :func:`inspector.access.sign` in a worker, and hands the signed
:class:`~inspector.access.Actor` to the screen, which passes it down with the change. The password
goes no further than that check: background jobs get the signed actor's plain values only.

Without accounts (the local user, ``role`` None) nothing is signed and no dialog opens: the
change goes on exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from inspector.access import SIGNED_ACTIONS, Actor, sign
from ui.workers import run_task

ERROR_STYLE = "color: #c62828;"
MEANING_STYLE = "font-size: 16px; font-weight: 700;"


class SignatureDialog(QDialog):
    """Re-enter the password to sign ``action``; ``signed`` holds the signed actor once accepted."""

    def __init__(
        self,
        ledger_url: str,
        actor: Actor,
        action: str,
        what: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.ledger_url, self.actor, self.action = ledger_url, actor, action
        self.meaning = SIGNED_ACTIONS[action]
        self.signed: Actor | None = None
        self.checking = False
        self.setWindowTitle(f"Sign: {self.meaning}")
        self.setMinimumWidth(460)
        meaning = QLabel(f"Signature meaning: “{self.meaning}”")
        meaning.setStyleSheet(MEANING_STYLE)
        self.subject = QLabel(what)
        self.subject.setWordWrap(True)
        who = QLabel(
            f"Signing as <b>{actor.name}</b> ({actor.role}). Re-enter your password: the audit trail "
            "records who signed, when, this meaning and the reason."
        )
        who.setWordWrap(True)
        who.setObjectName("hint")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText(f"password of {actor.name}")
        self.message = QLabel("")
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.setWordWrap(True)
        self.message.hide()
        buttons = QDialogButtonBox()
        self.sign_button = buttons.addButton("Sign", QDialogButtonBox.ButtonRole.AcceptRole)
        self.sign_button.setDefault(True)
        self.sign_button.clicked.connect(self.submit)
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(meaning)
        layout.addWidget(self.subject)
        layout.addWidget(who)
        layout.addWidget(self.password)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.password.setFocus()

    def submit(self) -> None:
        if self.checking:
            return
        password = self.password.text()
        if not password:
            self.say("Enter your password to sign.")
            return
        self.checking = True
        self.sign_button.setEnabled(False)
        self.say("")
        self.password.clear()
        run_task(
            sign,
            self.ledger_url,
            self.actor,
            password,
            self.action,
            on_done=self._signed,
            on_failed=self._refused,
        )

    def _signed(self, actor: Actor) -> None:
        self.checking = False
        self.sign_button.setEnabled(True)
        self.signed = actor
        self.accept()

    def _refused(self, message: str) -> None:
        self.checking = False
        self.sign_button.setEnabled(True)
        self.say(message)  # the backend's line as it is (it may start with a user name)
        self.password.setFocus()

    def say(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))


def with_signature(
    parent: QWidget,
    ledger_url: str,
    actor: Actor,
    action: str,
    what: str,
    then: Callable[[Actor], None],
) -> SignatureDialog | None:
    """Call ``then(actor)`` with a signed actor: at once without accounts, else after the dialog.

    Returns the open dialog (None when none was needed); cancelling it calls nothing.
    """
    if actor.role is None:
        then(actor)
        return None
    dialog = SignatureDialog(ledger_url, actor, action, what, parent)
    dialog.accepted.connect(lambda: then(dialog.signed) if dialog.signed is not None else None)
    dialog.open()
    return dialog
