"""Shared fixtures: tiny networks that build and run in milliseconds on 2 cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def tiny_vit_spec():
    from models.backbones import BackboneSpec

    return BackboneSpec("vit_tiny_patch16_224", 64, 1, {"depth": 4, "embed_dim": 48, "num_heads": 2})


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def make_station(
    root: Path, classes=("ok", "scratch", "spot"), per_class: int = 24, size: int = 40, seed: int = 0
):
    """A tiny, learnable station: noise plus a class-specific mark, PNG files in class folders."""
    from data.synthetic import write_synthetic_station

    return write_synthetic_station(root, classes, per_class, size, seed)


@pytest.fixture
def tiny_station(tmp_path) -> Path:
    return make_station(tmp_path / "station")


def shared_dataset(name: str) -> Path:
    path = SHARED / "datasets" / name
    if not (path / "manifest.csv").is_file():
        pytest.skip(f"../shared/datasets/{name} is not present")
    return path


@pytest.fixture(autouse=True)
def _settle_between_screen_tests(request):
    """After a screen test (tests/ui): its worker threads end and the garbage it left is collected
    here, at a quiet moment. Left to chance, the collector ran inside a later test's event dispatch
    and deleted a Qt object there (a segfault, or a hang with a worker waiting for the GIL)."""
    yield
    if "ui" not in request.node.path.parent.parts[-1:]:
        return
    import gc

    from PySide6.QtWidgets import QApplication

    from ui.workers import wait_for_tasks

    wait_for_tasks(60_000)
    app = QApplication.instance()
    if app is not None:
        app.processEvents()
    gc.collect()
