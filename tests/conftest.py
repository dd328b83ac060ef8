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
