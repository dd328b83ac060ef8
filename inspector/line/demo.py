"""The bundled demo model: an LTM model trained on ELPV, shipped as package data.

It is what the app and ``inspector demo`` use when no model is given; ``MODEL_CARD.md`` beside
it records how it was trained and how it scored.
"""

from __future__ import annotations

from pathlib import Path

from inspector.errors import InspectorError

DEMO_MODEL_DIR = Path(__file__).resolve().parents[1] / "demo_model"


def demo_model_path() -> Path:
    if not (DEMO_MODEL_DIR / "model.json").is_file():
        raise InspectorError(f"{DEMO_MODEL_DIR}: the bundled demo model is missing from this installation")
    return DEMO_MODEL_DIR
