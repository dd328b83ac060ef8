"""What every screen shares: the home folder, the settings, the ledger and the model registry."""

from __future__ import annotations

import threading
from pathlib import Path

from inspector.registry import Registry
from inspector.settings import Settings, load_settings, save_settings
from inspector.store import Ledger, default_url


class AppContext:
    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.settings: Settings = load_settings(self.home)
        self._ledger: Ledger | None = None
        self._lock = threading.Lock()

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
