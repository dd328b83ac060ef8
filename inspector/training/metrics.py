"""The evaluation report (``eval --json``) and its confusion-matrix plot."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import numpy as np

from inspector.classification_report import ClassMetrics, Metrics, classification_report

# The classification report lives in inspector.classification_report (the live line's int8 gate
# reads it too, without importing training); its names stay importable from here.
__all__ = [
    "ClassMetrics",
    "EvalReport",
    "Latency",
    "Metrics",
    "Score",
    "classification_report",
    "plot_confusion",
]


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
