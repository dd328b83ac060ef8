"""The classification report (scikit-learn) that evaluation, the int8 gate and the roll-out gate read.

Beside the packages that use it, not inside training/, so that the live line's int8 gate scores a
converted model without importing the training package (scikit-learn keeps it out of models/,
which is torch + timm only); the ``eval --json`` report around it stays in inspector.training.metrics.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


class ClassMetrics(TypedDict):
    """One class's row of the report."""

    precision: float
    recall: float
    f1: float
    support: int


class Metrics(TypedDict):
    """A classification report: what validation, model selection and before/after compare read.

    A TypedDict, not a class: the report crosses process boundaries (background jobs) and is
    written to ``eval.json`` as is, so it stays a plain dict at run time while its keys are
    declared here once for readers and type checkers.
    """

    accuracy: float
    macro_f1: float
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]]
    classes: list[str]
    n: int


def classification_report(labels: np.ndarray, predictions: np.ndarray, classes: list[str]) -> Metrics:
    """The metric fields of ``eval --json`` (DESIGN §4) for integer labels and predictions."""
    index = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=index, zero_division=0
    )
    present = [i for i in index if support[i] > 0]
    return {
        "accuracy": float(accuracy_score(labels, predictions)) if len(labels) else 0.0,
        "macro_f1": float(f1_score(labels, predictions, labels=present, average="macro", zero_division=0))
        if present
        else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        },
        "confusion": confusion_matrix(labels, predictions, labels=index).tolist(),
        "classes": list(classes),
        "n": int(len(labels)),
    }
