"""From class probabilities to the line's decision: OK, NG, UNSURE or ERROR.

- ERROR: the frame could not be judged (inference failed, non-finite output).
- UNSURE: the top class is below the bundle's calibrated ``unsure_below`` confidence, or the
  part looks unlike anything seen in training (free energy above ``ood_energy_above``); a person
  decides. Unfamiliar parts must never be waved through as OK.
- OK / NG: the confident top class is / is not the bundle's normal class.

A bundle without a normal class (a sorting station: every class is a kind of part) still works:
a confident part is OK with its class as the label; only UNSURE and ERROR need a person.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np


class Verdict(str, Enum):
    OK = "OK"
    NG = "NG"
    UNSURE = "UNSURE"
    ERROR = "ERROR"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    label: str | None
    confidence: float | None
    ood_score: float | None
    reason: str = ""


@dataclass(frozen=True)
class VerdictRules:
    classes: tuple[str, ...]
    normal_class: str | None
    unsure_below: float = 0.5
    ood_energy_above: float | None = None

    @classmethod
    def from_bundle(
        cls, classes: list[str], normal_class: str | None, thresholds: dict[str, Any]
    ) -> VerdictRules:
        ood = thresholds.get("ood_energy_above")
        return cls(
            tuple(classes),
            normal_class,
            float(thresholds.get("unsure_below", 0.5)),
            float(ood) if ood is not None else None,
        )

    def decide(self, probabilities: np.ndarray, energy: float | None) -> Decision:
        if probabilities.shape != (len(self.classes),) or not np.all(np.isfinite(probabilities)):
            return Decision(Verdict.ERROR, None, None, None, "non-finite model output")
        top = int(np.argmax(probabilities))
        label, confidence = self.classes[top], float(probabilities[top])
        ood = float(energy) if energy is not None and math.isfinite(energy) else None
        if ood is not None and self.ood_energy_above is not None and ood > self.ood_energy_above:
            return Decision(Verdict.UNSURE, label, confidence, ood, "unfamiliar part (out of distribution)")
        if confidence < self.unsure_below:
            return Decision(Verdict.UNSURE, label, confidence, ood, "low confidence")
        if self.normal_class is None or label == self.normal_class:
            return Decision(Verdict.OK, label, confidence, ood)
        return Decision(Verdict.NG, label, confidence, ood)
