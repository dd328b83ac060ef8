"""Models: the registry's versions side by side, which one the line runs, deploy and roll back.

A version that has judged in shadow beside the deployed model shows its record under the table —
agreement, per-class confusion (deployed class down, the candidate's across), disagreements, shed
frames — with Promote (a deploy through the audited roll-out gate) and Discard, one action each.

An engineer picks the speed/accuracy point here, so each row shows both: GMACs and measured
latency next to the key metric. Deploy and roll back only change which registered version is
current (the registry makes that switch atomic); they ask first, because a line started
afterwards judges parts with the other model.

This module holds the screen and its changes; the versions table is ``ui.models_versions``, the
shadow panel ``ui.models_shadow`` and the speed table ``ui.models_speed``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from inspector.access import Actor
from inspector.jobs import deploy as jobs_deploy
from inspector.jobs import register as jobs_register
from inspector.jobs import speed as jobs_speed
from inspector.registry import Version
from inspector.rollout import GateMargins
from inspector.shadow_review import ShadowSummary, shadow_summaries
from ui.context import AppContext
from ui.models_shadow import ShadowBox
from ui.models_speed import fill_speed, speed_note, speed_table
from ui.models_versions import COLUMNS, deployed_text, fill_versions, version_details, versions_table
from ui.session import may
from ui.signature_dialog import SignatureDialog, with_signature
from ui.version_text import read_registry
from ui.workers import run_job, run_task

__all__ = ["COLUMNS", "ModelsView", "acting_for", "shadow_discard"]  # COLUMNS: the table's, for tests

ERROR_STYLE = "color: #c62828;"
TITLE_STYLE = "font-size: 20px; font-weight: 700;"


def acting_for(context: AppContext, actor: Actor | None = None) -> Actor | str | None:
    """Who a change is made by, as the roll-out functions take it: the (signed) signed-in person
    once accounts exist; without them the settings' operator name as before (None: the login name).
    An Actor crosses into a background job as three plain values (name, role, signed), never a
    password."""
    actor = actor or context.actor
    return actor if actor.role is not None else (context.settings.operator or None)


def shadow_discard(context: AppContext, version_id: str, reason: str) -> ShadowSummary:
    """Stop shadowing (audited; a ledger event only, so a worker thread, not a background job)."""
    from inspector.rollout import who_default
    from inspector.shadow_review import discard

    return discard(
        context.home,
        context.db_url,
        version_id,
        who=acting_for(context) or who_default(),
        reason=reason,
    )


class ModelsView(QWidget):
    """The registry table with Deploy, Roll back and Add bundle…; every change runs in a worker."""

    deployed_changed = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.versions: list[Version] = []
        self.deployed_id: str | None = None
        self.busy = False
        self.reloads = 0  # finished reloads: lets tests (and nothing else) wait for one
        self.shadows: dict[str, ShadowSummary] = {}  # versions with shadow data, by id
        self.shadow_reloads = 0

        title = QLabel("Model versions")
        title.setStyleSheet(TITLE_STYLE)
        self.deployed_label = QLabel("")
        self.table = versions_table()
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.itemDoubleClicked.connect(lambda _item: self.deploy_selected())
        self.details = QLabel("")
        self.details.setObjectName("hint")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.deploy_button = QPushButton("Deploy selected")
        self.deploy_button.setObjectName("primary")
        self.deploy_button.setToolTip("Make the selected version the one lines run (asks first)")
        self.deploy_button.clicked.connect(self.deploy_selected)
        self.rollback_button = QPushButton("Roll back")
        self.rollback_button.setToolTip("Undo the last deployment: the version deployed before it returns")
        self.rollback_button.clicked.connect(self.rollback)
        self.add_button = QPushButton("Add bundle…")
        self.add_button.setToolTip(
            "Register a model folder (model.json + model.safetensors) as a new version"
        )
        self.add_button.clicked.connect(self.add_bundle)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.reload)
        self.speed_button = QPushButton("Speed on this PC")
        self.speed_button.setToolTip(
            "Time the selected version on each runtime this PC has (batch 1, taking turns): PyTorch, "
            "ONNX Runtime fp32 and int8 (with its accuracy gate's verdict), OpenVINO where installed"
        )
        self.speed_button.clicked.connect(self.bench_selected)
        self.bench: dict | None = None  # the last table shown, for tests and nothing else
        self.speed_table = speed_table()
        self.speed_note = QLabel("")
        self.speed_note.setObjectName("hint")
        self.speed_note.setWordWrap(True)
        self.message = QLabel("")
        self.message.setWordWrap(False)

        box = self.shadow_box = ShadowBox()
        box.promote_button.clicked.connect(self.promote_shadow)
        box.discard_button.clicked.connect(self.discard_shadow)
        # The panel's parts, by the names the screen has always given them (the tests use them).
        self.shadow_title, self.shadow_note, self.confusion = box.title, box.note, box.confusion
        self.promote_button, self.discard_button = box.promote_button, box.discard_button

        buttons = QHBoxLayout()
        buttons.addWidget(self.deploy_button)
        buttons.addWidget(self.rollback_button)
        buttons.addWidget(self.add_button)
        buttons.addWidget(refresh)
        buttons.addWidget(self.speed_button)
        buttons.addWidget(self.message, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(self.deployed_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)
        layout.addWidget(self.speed_table)
        layout.addWidget(self.speed_note)
        layout.addWidget(self.shadow_box)
        layout.addLayout(buttons)
        # Each change button and the action the role needs for it (the backend decides; this only
        # greys out what the signed-in role could never do).
        self._buttons = {
            self.deploy_button: "deploy",
            self.rollback_button: "rollback",
            self.add_button: "deploy",
            self.promote_button: "shadow_promote",
            self.discard_button: "shadow_discard",
        }
        self.signature_dialog: SignatureDialog | None = None
        self.set_actor(context.actor)
        self.reload()

    # -- reading -------------------------------------------------------------------------------

    def shown(self) -> None:
        self.reload()

    def reload(self, *_args: object) -> None:
        """Re-read the registry in a worker (also the slot for "a model was added")."""
        run_task(read_registry, self.context.home, on_done=self._loaded, on_failed=self._load_failed)
        run_task(
            shadow_summaries,
            self.context.home,
            self.context.db_url,
            on_done=self._shadows_loaded,
            on_failed=self._shadows_failed,
        )

    def _shadows_loaded(self, found: dict[str, ShadowSummary]) -> None:
        self.shadows = found
        self.shadow_reloads += 1
        self._show_shadow()

    def _shadows_failed(self, message: str) -> None:
        self.shadows = {}
        self.shadow_reloads += 1
        self._show_shadow()
        self._say(f"shadow records not read: {message}", error=True)

    def _loaded(self, result: tuple[list[Version], str | None]) -> None:
        selected = self.selected_id()
        self.versions, self.deployed_id = result
        fill_versions(self.table, self.versions, self.deployed_id, self.context.home)
        self.deployed_label.setText(deployed_text(self.versions, self.deployed_id))
        self._select(selected)
        self.reloads += 1

    def _load_failed(self, message: str) -> None:
        self.reloads += 1
        self._say(message, error=True)

    def selected_id(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def _select(self, version_id: str | None) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 1).text() == version_id:
                self.table.selectRow(row)
                return
        self._selection_changed()

    def _selection_changed(self) -> None:
        version = next((v for v in self.versions if v.id == self.selected_id()), None)
        self._show_shadow()
        self.details.setText(version_details(version))

    def _show_shadow(self) -> None:
        """The selected version's shadow record side by side with the deployed model, if it has one."""
        summary = self.shadows.get(self.selected_id() or "")
        if summary is None or not summary.has_data:
            self.shadow_box.hide()
            return
        self.shadow_box.show_summary(
            summary,
            may_promote=self._may_now("shadow_promote") and summary.candidate != self.deployed_id,
            may_discard=self._may_now("shadow_discard"),
        )

    # -- changes -------------------------------------------------------------------------------

    def _decided(self, candidate: str, text: str) -> str:
        """Promote and discard end the shadowing in settings.json; the app's copy follows."""
        if self.context.settings.shadow == candidate:
            self.context.settings.shadow = ""
        return text

    def promote_shadow(self) -> None:
        summary = self.shadows.get(self.selected_id() or "")
        if summary is None:
            return
        gated = bool(self.context.settings.gate_data)
        reason = self.ask_reason(
            f"Promote {summary.candidate}",
            f"{summary.line()}.\nDeploy {summary.candidate} through the offline gate"
            + ("" if gated else " (no held-out data in Settings: the gate cannot run, a reason is required)")
            + "? Why:",
        )
        if reason is None:
            return
        if not gated and not reason:
            self._say("Promoting without the offline gate needs a reason.", error=True)
            return
        self._signed(
            "deploy",
            f"Promote {summary.candidate} from shadow and deploy it. Reason: “{reason or '–'}”",
            lambda actor: self._deploy(
                summary.candidate, reason, override=False, from_shadow=True, actor=actor
            ),
        )

    def discard_shadow(self) -> None:
        summary = self.shadows.get(self.selected_id() or "")
        if summary is None:
            return
        reason = self.ask_reason(
            f"Discard {summary.candidate}", f"{summary.line()}.\nStop shadowing {summary.candidate}? Why:"
        )
        if reason is None:
            return
        if not reason:
            self._say("Discarding a shadow candidate needs a reason.", error=True)
            return

        def discarded(found: ShadowSummary) -> None:
            self._say(self._decided(found.candidate, f"{found.candidate} discarded as shadow candidate."))
            self.reload()

        self._start(
            shadow_discard,
            self.context,
            summary.candidate,
            reason,
            started=f"Discarding {summary.candidate} …",
            on_done=discarded,
            as_job=False,  # a quick ledger write
        )

    def deploy_selected(self) -> None:
        version_id = self.selected_id()
        if version_id is None:
            self._say("Select a version to deploy.", error=True)
            return
        if version_id == self.deployed_id:
            self._say(f"{version_id} is already deployed.")
            return
        current = self.deployed_id or "the bundled demo model"
        gate_data = self.context.settings.gate_data
        gate = (
            f"First the offline gate scores it beside {current} on the held-out images of {gate_data}."
            if gate_data
            else "No gate data is set in Settings, so no offline gate runs: say why (required)."
        )
        reason = self.ask_reason(
            "Deploy model",
            f"Deploy {version_id}? Lines started from now on judge parts with it instead of {current}. "
            f"{gate} Roll back returns to the current one.\n\nWhy (kept in the audit trail):",
        )
        if reason is None:
            return
        self._signed(
            "deploy",
            f"Deploy {version_id} in place of {current}. Reason: “{reason or '–'}”",
            lambda actor: self._deploy(version_id, reason, override=False, actor=actor),
        )

    def ask_reason(self, title: str, text: str) -> str | None:
        """The reason for an audited change; None when the person cancels."""
        reason, accepted = QInputDialog.getText(self, title, text)
        return reason.strip() if accepted else None

    def _deploy(
        self,
        version_id: str,
        reason: str,
        override: bool,
        from_shadow: bool = False,
        actor: Actor | None = None,
    ) -> None:
        """Start the deploy job as ``actor`` (signed for this deploy once accounts exist)."""
        settings = self.context.settings
        verb = "Promoting" if from_shadow else "Deploying"
        self._start(
            jobs_deploy.deploy_job,
            self.context.home,
            self.context.db_url,
            version_id,
            acting_for(self.context, actor),
            reason,
            settings.gate_data or None,
            GateMargins.of(settings),
            override,
            from_shadow,
            started=f"{verb} {version_id}" + (" (offline gate first) …" if settings.gate_data else " …"),
            on_done=lambda answer: self._deployed(answer, reason, from_shadow),
        )

    def _deployed(self, answer: dict, reason: str, from_shadow: bool) -> None:
        version_id = answer["version"]
        if answer["blocked"]:
            checks = "\n".join(answer["checks"])
            if answer.get("notes"):
                checks += "\n\nNot checked:\n" + "\n".join(f"• {note}" for note in answer["notes"])
            self._say(f"The offline gate blocked {version_id}: see the checks.", error=True)
            again = self.ask_reason(
                "Offline gate blocked the deploy",
                f"{version_id} is worse than the deployed model beyond the margins:\n{checks}\n\n"
                "Deploy anyway? Say why (required, audited):",
            )
            if again:
                self._signed(
                    "override_gate",
                    f"Deploy {version_id} although the offline gate blocked it. Reason: “{again}”",
                    lambda actor: self._deploy(
                        version_id, again, override=True, from_shadow=from_shadow, actor=actor
                    ),
                )
            return
        what = "promoted from shadow and deployed" if from_shadow else "deployed"
        done = f"{version_id} {what}; {answer['gate']}."
        self._say(self._decided(version_id, done) if from_shadow else done)
        self.deployed_changed.emit()
        self.reload()

    def rollback(self) -> None:
        reason = self.ask_reason(
            "Roll back",
            "Undo the last deployment? The version deployed before it becomes current again.\n\n"
            "Why (kept in the audit trail):",
        )
        if reason is None:
            return

        def done(version_id: str) -> None:
            self._say(f"Rolled back: {version_id} is deployed again.")
            self.deployed_changed.emit()
            self.reload()

        def start(actor: Actor) -> None:
            self._start(
                jobs_deploy.rollback_job,
                self.context.home,
                self.context.db_url,
                acting_for(self.context, actor),
                reason,
                started="Rolling back …",
                on_done=done,
            )

        self._signed(
            "rollback",
            f"Roll back from {self.deployed_id or 'the deployed version'} to the version before it. "
            f"Reason: “{reason or '–'}”",
            start,
        )

    def _start(
        self,
        fn: Callable[..., object],
        *args: object,
        started: str,
        on_done: Callable[[Any], None],
        pause_for_line: bool = True,
        as_job: bool = True,
    ) -> None:
        """One change at a time, buttons disabled until it ends: a job of :mod:`inspector.jobs`
        runs in a background process below the line (the gate and latency scoring load models),
        anything else (``as_job=False``: a quick ledger write) in a worker thread."""
        if self.busy:
            return
        self.busy = True
        for button in self._buttons:
            button.setEnabled(False)
        self._say(started)

        def finished(value: object) -> None:
            self._idle()
            on_done(value)

        def failed(message: str) -> None:
            self._idle()
            self._say(message, error=True)

        if not as_job:
            run_task(fn, *args, on_done=finished, on_failed=failed)
            return
        run_job(
            fn,
            *args,
            line=self.context.line_overruns,
            pause_for_line=pause_for_line,
            owner=self,
            on_done=finished,
            on_failed=failed,
            on_progress=lambda text: self._say(str(text)),
        )

    def bench_selected(self) -> None:
        """``inspector models bench`` for the selected version, as a background job."""
        version_id = self.selected_id()
        if version_id is None:
            self._say("Select a version to time first.", error=True)
            return
        self._start(
            jobs_speed.bench_version,
            self.context.home,
            version_id,
            started=f"Timing {version_id} on each runtime of this PC (int8: calibrating and gating first) …",
            on_done=self._benched,
            pause_for_line=False,  # never paused inside a timed call
        )

    def _benched(self, result: dict) -> None:
        self.bench = result
        fill_speed(self.speed_table, result["rows"])
        self.speed_table.show()
        self.speed_note.setText(speed_note(result, self.context.line_overruns() is not None))
        self._say(f"Timed {result['model']}.")

    def add_bundle(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Model bundle folder (model.json + model.safetensors)")
        if path:
            self.add_path(Path(path))

    def add_path(self, path: Path) -> None:
        """Register a bundle folder (checked, copied and measured in a worker)."""

        def added(version: Version) -> None:
            self._say(f"Added {version.id} from {path.name}.")
            self.reload()

        self._start(
            jobs_register.add_version,  # measures latency: a background job below the line
            self.context.home,
            path,
            started=f"Adding {path} (checking, copying, measuring latency) …",
            on_done=added,
            pause_for_line=False,  # never paused inside a timed call
        )

    def _idle(self) -> None:
        self.busy = False
        self._enable_buttons()

    def _may_now(self, action: str) -> bool:
        return not self.busy and may(self.context.actor, action)

    def _enable_buttons(self) -> None:
        for button, action in self._buttons.items():
            button.setEnabled(self._may_now(action))
        self._show_shadow()  # Promote stays off for the version already deployed

    def set_actor(self, actor: Actor) -> None:
        """The signed-in role changed: offer only the changes it may make (deploy, roll back, …
        are an engineer's); the backend refuses the rest in any case."""
        self._enable_buttons()
        if actor.role is not None and not may(actor, "deploy"):
            self._say(f"{actor.name} ({actor.role}) may look; deploying and rolling back are an engineer's.")

    def _signed(self, action: str, what: str, then: Callable[[Actor], None]) -> None:
        """Ask for the signature of ``action`` (once accounts exist), then go on with the signed actor."""
        self.signature_dialog = with_signature(
            self, self.context.db_url, self.context.actor, action, what, then
        )

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setToolTip(text)
        self.message.setStyleSheet(ERROR_STYLE if error else "")
