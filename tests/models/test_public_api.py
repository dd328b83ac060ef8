"""``models/__init__.py`` names the API ``inspector/`` uses, and importing it stays cheap."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import models

ROOT = Path(__file__).resolve().parents[2]


def test_every_listed_name_resolves_to_its_module():
    for name in models.__all__:
        assert getattr(models, name) is not None, name


def test_every_models_name_inspector_imports_is_listed():
    """A new import of a models name into inspector/ extends the list (or is a name that should
    stay private to models/, which the test then makes someone decide)."""
    used: set[str] = set()
    for path in (ROOT / "inspector").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("models."):
                used.update(alias.name for alias in node.names)
    assert used - set(models.__all__) == set()


def test_import_models_loads_no_torch():
    code = "import sys, models; from models import ModelError, read_json; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
