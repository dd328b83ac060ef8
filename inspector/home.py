"""The application's home folder: database, image archive, model registry, config (DESIGN §2).

``--home DIR`` beats ``INSPECTOR_HOME`` beats the platform's user data dir. Nothing is ever
written into the source tree at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir

ENV = "INSPECTOR_HOME"


def app_home(home: str | Path | None = None) -> Path:
    chosen = (
        Path(home)
        if home
        else Path(os.environ[ENV])
        if os.environ.get(ENV)
        else Path(user_data_dir("ltm-inspector"))
    )
    chosen.mkdir(parents=True, exist_ok=True)
    return chosen
