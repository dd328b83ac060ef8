"""The application's home folder: database, image archive, model registry, config (DESIGN §2).

``--home DIR`` beats ``INSPECTOR_HOME`` beats the platform's user data dir. Nothing is ever
written into the source tree at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir

ENV = "INSPECTOR_HOME"


def home_path(home: str | Path | None = None) -> Path:
    """The home folder ``app_home`` would use, without making it (for commands that only look)."""
    return (
        Path(home)
        if home
        else Path(os.environ[ENV])
        if os.environ.get(ENV)
        else Path(user_data_dir("ltm-inspector"))
    )


def app_home(home: str | Path | None = None) -> Path:
    chosen = home_path(home)
    chosen.mkdir(parents=True, exist_ok=True)
    return chosen
