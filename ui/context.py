"""What every screen shares: the home folder, the settings, the ledger, the model registry and who acts."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from inspector.access import Actor, local_actor
from inspector.registry import Registry
from inspector.settings import Settings, load_settings, save_settings
from inspector.store import Ledger, default_url

if TYPE_CHECKING:
    from inspector.line.pipeline import Pipeline


class AppContext:
    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.settings: Settings = load_settings(self.home)
        self._ledger: Ledger | None = None
        self._lock = threading.Lock()
        # The line the Live screen runs (set by its controller): background jobs yield to it.
        self.pipeline: Pipeline | None = None
        # Who acts (issue 27). Without accounts: the local user of old, allowed everything; with
        # accounts the login replaces it (``ui.session``), and screens pass it down with each change.
        self.accounts = False
        self.actor: Actor = local_actor(self.settings.operator or None)

    @property
    def db_url(self) -> str:
        return self.settings.db_url or default_url(self.home)

    def ledger(self) -> Ledger:
        """Opened (and migrated) on first use — call from a worker thread, never the UI thread."""
        with self._lock:
            if self._ledger is None or self._ledger.url != self.db_url:
                if self._ledger is not None:
                    self._ledger.close()
                self._ledger = Ledger(self.db_url)
            return self._ledger

    def line_overruns(self) -> int | None:
        """The running line's overrun count, None when no line runs (any thread may ask)."""
        pipeline = self.pipeline
        return pipeline.stats.overruns if pipeline is not None and pipeline.running else None

    @property
    def registry(self) -> Registry:
        return Registry(self.home)

    def save(self, settings: Settings) -> None:
        save_settings(self.home, settings)
        self.settings = settings

    def close(self) -> None:
        with self._lock:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None
