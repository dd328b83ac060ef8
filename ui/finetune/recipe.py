"""Page 3 of the fine-tune wizard: what may change in the model, and for how long."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWizardPage,
)

from inspector.stations import station_name
from inspector.training.defaults import default_trainable, pretrained_base
from inspector.training.finetune import FINETUNE_L2SP, FINETUNE_RECIPE
from inspector.training.loop import Recipe
from inspector.training.station_memory import samples_of
from ui.finetune.common import KEEP_TEXT, NEEDS_REFERENCE, RECOMMENDED, TRAINABLE_TEXT, hint_label
from ui.finetune.state import FinetuneState

# BENCHMARKS.md, "Adaptation on the pretrained hybrid": re-estimating the stem's BatchNorm
# statistics alone won back 29 % of the ELPV lamp change and 46 % of magnetic_tile's, in seconds.
PRETRAINED_NOTE = (
    "It starts from ImageNet features: every choice first re-estimates its lighting statistics on "
    "the station's images (kept only if validation does not drop). Without labels, Re-calibrate on "
    "the Fine-tune screen does only that, in seconds (17–74 % of a lamp change won back in our "
    "benchmarks, at a cost to the old station of up to 13 points)."
)


class RecipePage(QWizardPage):
    """3 · What may change in the model, and for how long."""

    def __init__(self, state: FinetuneState) -> None:
        super().__init__()
        self.state = state
        self.setTitle("What trains")
        self.setSubTitle(
            "The parts not chosen stay frozen. The epoch that scores best on validation is kept (by "
            "default the new and the old station's images judged together) — and if none beats the base "
            "model, its weights are."
        )
        self.group = QButtonGroup(self)
        self.radios: dict[str, QRadioButton] = {}
        which = QGroupBox("Trainable parts")
        which_layout = QVBoxLayout(which)
        for key, title, text in TRAINABLE_TEXT:
            radio = QRadioButton(title)
            self.radios[key] = radio
            self.group.addButton(radio)
            which_layout.addWidget(radio)
            hint = hint_label(text)
            hint.setContentsMargins(24, 0, 0, 6)
            which_layout.addWidget(hint)
        self.radios["merge+head"].setChecked(True)
        self.recommended_for: Path | None = None  # the base the recommendation was last made for
        self.model_note = hint_label("")
        which_layout.addWidget(self.model_note)

        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setValue(FINETUNE_RECIPE.epochs)
        self.epochs.setSuffix(" epochs")
        self.budget = QSpinBox()
        self.budget.setRange(0, 24 * 60)
        self.budget.setValue(30)
        self.budget.setSuffix(" min")
        self.budget.setSpecialValueText("no limit")
        how = QGroupBox("How long")
        form = QFormLayout(how)
        form.addRow("Epochs", self.epochs)
        form.addRow("Time budget", self.budget)
        form.addRow(
            hint_label(
                "When the budget runs out, training stops after the current step and keeps its best "
                "epoch so far. One epoch is one pass over the station's training images."
            )
        )
        self.estimate = hint_label("")
        form.addRow(self.estimate)
        keep = QGroupBox("Keep the old station")
        keep_layout = QVBoxLayout(keep)
        self.keeping: dict[str, QCheckBox] = {}
        for key, title, text in KEEP_TEXT:
            box = QCheckBox(title)
            box.setChecked(bool(getattr(FINETUNE_RECIPE, key)))
            self.keeping[key] = box
            keep_layout.addWidget(box)
            hint = hint_label(text)
            hint.setContentsMargins(24, 0, 0, 6)
            keep_layout.addWidget(hint)
        self.keep_note = hint_label("")
        keep_layout.addWidget(self.keep_note)
        right = QVBoxLayout()
        right.addWidget(how)
        right.addWidget(keep)
        right.addStretch(1)
        layout = QHBoxLayout(self)
        layout.addWidget(which, 3)
        layout.addLayout(right, 2)

    def initializePage(self) -> None:  # Qt's name
        check = self.state.check
        has_merge = check is not None and check.meta.merge_mode != "none"
        for key in ("merge", "merge+norm"):
            self.radios[key].setEnabled(has_merge)
        recommended = default_trainable(check is not None and pretrained_base(check.meta.provenance))
        for key, title, _text in TRAINABLE_TEXT:
            self.radios[key].setText(title + (RECOMMENDED if key == recommended else ""))
        base = check.base if check is not None else None
        if base != self.recommended_for or not self.radios[self.trainable].isEnabled():
            self.radios[recommended].setChecked(True)  # a new base: its own default; else the person's pick
            self.recommended_for = base
        if not has_merge:
            self.model_note.setText(
                "This base model has no merge modules (merge mode none): only the head, the norms or the "
                "whole network can adapt."
            )
        else:
            self.model_note.setText(f"Base model: {check.meta.merge_mode.upper()} merging." if check else "")
        if check is not None and pretrained_base(check.meta.provenance):
            self.model_note.setText(self.model_note.text() + " " + PRETRAINED_NOTE)
        self._say_reference(check.meta.provenance if check is not None else {})
        if check is not None:
            train = sum(check.counts["train"].values())
            self.estimate.setText(f"{train} training images, {check.meta.preprocessing.size} px input.")

    def _say_reference(self, provenance: dict) -> None:
        """Replay, the blend and judging on both stations need the base's reference sample."""
        samples = [s for s in samples_of(provenance) if isinstance(s.get("images"), list) and s["images"]]
        for key in NEEDS_REFERENCE:
            self.keeping[key].setEnabled(bool(samples))
        if not samples:
            self.keep_note.setText(
                "This base model keeps no sample of the station it was trained on (trained before "
                "version 2026-12): the old station cannot be replayed, judged, blended toward or checked."
            )
            return
        images = sum(len(s["images"]) for s in samples)
        names = ", ".join(station_name(str(s.get("data", ""))) for s in samples)
        stations = "its station" if len(samples) == 1 else f"the {len(samples)} stations it served"
        self.keep_note.setText(
            f"The base keeps {images} images of {stations} ({names}) by path; they are used where "
            "those folders are still reachable from this computer."
        )

    def validatePage(self) -> bool:  # Qt's name: Next hands the choice on to training
        self.state.recipe = self.recipe()
        self.state.budget_seconds = self.budget_seconds
        return True

    @property
    def trainable(self) -> str:
        return next(key for key, radio in self.radios.items() if radio.isChecked())

    @property
    def budget_seconds(self) -> float | None:
        return self.budget.value() * 60.0 or None

    def recipe(self) -> Recipe:
        chosen = {key: box.isChecked() and box.isEnabled() for key, box in self.keeping.items()}
        l2sp = FINETUNE_L2SP if chosen.pop("l2sp") else 0.0
        return replace(
            FINETUNE_RECIPE, epochs=self.epochs.value(), trainable=self.trainable, l2sp=l2sp, **chosen
        )
