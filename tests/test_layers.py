"""The one-way layer contract of DESIGN §2, checked by import-linter on every test run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_layers_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed")
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_module_import_cycles():
    """Issue 28: a circle between modules (function-level imports included) hides which module a
    reader must understand first; five were cut, and none may come back."""
    pytest.importorskip("grimp")
    pytest.importorskip("networkx")
    from benchmarks.import_graph import cycles

    assert cycles() == []


def test_no_module_over_600_lines():
    """Issue 28: a module a newcomer can read in one sitting."""
    long = {
        str(path.relative_to(ROOT)): n
        for package in ("models", "data", "inspector", "ui", "benchmarks")
        for path in (ROOT / package).rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert long == {}
