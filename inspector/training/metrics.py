"""Classification metrics (scikit-learn), the evaluation report and its confusion-matrix plot."""

from __future__ import annotations

from pathlib import Path
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


class Score(TypedDict):
    """Accuracy and macro-F1 alone (the robustness table's cells)."""

    accuracy: float
    macro_f1: float


class Latency(TypedDict):
    """Batch-1 latency of ``eval --json`` (PyTorch eager)."""

    p50: float
    p95: float
    runs: int
    batch: int
    runtime: str


class EvalReport(Metrics, total=False):
    """``inspector eval --json`` (DESIGN §4): the metrics plus what was evaluated and its cost;
    ``robustness`` only with ``--robustness``. The JSON file is exactly this dict."""

    model: str
    data: str
    split: str
    data_fingerprint: str
    skipped_files: int
    gmacs: float
    params: int
    merge: str
    gmacs_ratio: float | None
    latency_ms: Latency
    robustness: dict[str, Score]


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


def plot_confusion(confusion: list[list[int]], classes: list[str], path: Path, title: str) -> Path:
    """A confusion-matrix PNG with counts and row-normalised shading (what QA reads first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Class names are folder names a person chose: ``$a^{$`` is text here, not mathtext.
    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        matrix = np.asarray(confusion, dtype=float)
        rows = matrix.sum(axis=1, keepdims=True)
        share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
        size = max(4.0, 0.7 * len(classes) + 2.5)
        fig, ax = plt.subplots(figsize=(size, size * 0.9), dpi=110)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(classes)), classes, rotation=40, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=10)
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(
                j,
                i,
                f"{int(count)}",
                ha="center",
                va="center",
                color="white" if share[i, j] > 0.5 else "black",
            )
        fig.tight_layout()
        from models.files import atomic_write

        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
        plt.close(fig)
    return path
