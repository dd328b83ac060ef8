"""Page 6 of the fine-tune wizard: keep the result as a new registry version, deployed or not."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QCheckBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout, QWizardPage

from ui.finetune.common import TRAINABLE_TEXT, hint_label
from ui.finetune.state import FinetuneState


class SavePage(QWizardPage):
    """6 · Keep it: a new registry version, deployed now or later from the Models screen."""

    def __init__(self, state: FinetuneState) -> None:
        super().__init__()
        self.state = state
        self.setTitle("Save as a new model version")
        self.setSubTitle(
            "The model registry keeps every version; deploying one switches the line to it and Models › "
            "Roll back returns to the previous one. Cancel now discards the fine-tuned model."
        )
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.note = QLineEdit()
        self.note.setPlaceholderText("What this version is for (shown in the Models screen)")
        self.deploy = QCheckBox("Deploy it now")
        self.deploy_hint = hint_label(
            "Lines started from now on use it. Leave unticked to compare it in the Models screen first."
        )
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Note", self.note)
        form.addRow("", self.deploy)
        form.addRow("", self.deploy_hint)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def initializePage(self) -> None:  # Qt's name
        state = self.state
        summary, check = state.summary, state.check
        assert summary is not None and check is not None
        base = check.base
        base_name = (
            base.name if base.parent.name == "models" else "demo model" if "demo" in base.name else str(base)
        )
        station = check.station.root.name
        recipe = state.recipe
        presets = state.presets
        outcome = summary.outcome
        self.note.setText(
            f"fine-tuned from {base_name} on {station} ({recipe.trainable}, "
            f"{'+'.join(presets) or 'default aug'}, {len(outcome.history)} ep)"
        )
        kept = (
            "the base weights (no epoch beat them on validation)"
            if outcome.best_epoch < 0
            else f"epoch {outcome.best_epoch + 1} of {len(outcome.history)}"
        )
        trained = next(title for key, title, _text in TRAINABLE_TEXT if key == recipe.trainable)
        rows = [
            ("Base model", f"{base_name} <span style='color:#5f6b7a'>({html.escape(str(base))})</span>"),
            (
                "Station",
                f"{html.escape(str(check.station.root))} — {len(check.station.samples)} images, "
                f"{len(check.station.classes)} classes",
            ),
            (
                "Trained",
                f"{trained}; augmentation: {', '.join(presets) or 'default'}",
            ),
            ("Kept", kept),
            (
                "Held-out macro-F1",
                f"{summary.before['macro_f1']:.3f} → <b>{summary.after['macro_f1']:.3f}</b> "
                f"(accuracy {summary.before['accuracy']:.3f} → {summary.after['accuracy']:.3f}, "
                f"n={summary.after['n']})",
            ),
        ]
        speed = state.speed
        if speed:
            rows.append(
                (
                    "Speed",
                    f"{speed['after']['gmacs']:.3f} GMACs, {speed['after']['p50']:.1f} ms p50 at batch 1",
                )
            )
        rows.append(("Registry", html.escape(str(state.context.home / "models"))))
        cells = "".join(
            f"<tr><td style='padding:3px 16px 3px 0; color:#5f6b7a'>{name}</td>"
            f"<td style='padding:3px 0'>{value}</td></tr>"
            for name, value in rows
        )
        self.summary.setText(f"<table>{cells}</table>")
        self.status.setText("")
