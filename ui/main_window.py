"""The main window: a tab per job — Live (operator), Review (QA), Fine-tune and Models (engineer)."""

from __future__ import annotations

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QMainWindow, QStackedWidget, QTabWidget

from inspector.access import Actor
from ui.context import AppContext
from ui.finetune_view import FinetuneView
from ui.live_view import LiveView
from ui.models_view import ModelsView
from ui.review import ReviewView
from ui.session import Session, where
from ui.settings_view import SettingsView
from ui.style import APP_STYLE
from ui.workers import terminate_all


class MainWindow(QMainWindow):
    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context
        self.setWindowTitle(f"LTM Inspector — {context.home}")
        self.setStyleSheet(APP_STYLE)
        self.tabs = QTabWidget()
        self.live = LiveView(context)
        self.review = ReviewView(context)
        self.finetune = FinetuneView(context)
        self.models = ModelsView(context)
        self.settings = SettingsView(context)
        for widget, name in (
            (self.live, "Live"),
            (self.review, "Review"),
            (self.finetune, "Fine-tune"),
            (self.models, "Models"),
            (self.settings, "Settings"),
        ):
            self.tabs.addTab(widget, name)
        self.tabs.currentChanged.connect(self._tab_shown)
        self.models.deployed_changed.connect(self.live.reload_models)
        self.finetune.model_added.connect(self.models.reload)
        self.finetune.model_added.connect(self.live.reload_models)
        # Who is signed in (once accounts exist), Lock / Sign out, and the cover while locked.
        self.session = Session(context, self._cover, self)
        self.session.actor_changed.connect(self.apply_actor)
        self.settings.saved.connect(self.session.idle.arm)  # a changed idle_lock_minutes, at once
        self.stack = QStackedWidget()
        self.stack.addWidget(self.tabs)
        self.stack.addWidget(self.session.cover_page)
        self.setCentralWidget(self.stack)
        self.statusBar().addPermanentWidget(self.session.badge)
        self.statusBar().showMessage(f"Results ledger: {where(context.db_url)}")
        self.apply_actor(context.actor)

    def apply_actor(self, actor: Actor) -> None:
        """Every screen that acts for someone hears who that is now (after a login over the lock)."""
        for widget in (self.live, self.review, self.finetune, self.models, self.settings):
            if hasattr(widget, "set_actor"):
                widget.set_actor(actor)

    def _cover(self, locked: bool) -> None:
        """While locked the screens are hidden behind the cover; the line runs on underneath."""
        self.stack.setCurrentWidget(self.session.cover_page if locked else self.tabs)

    def _tab_shown(self, index: int) -> None:
        widget = self.tabs.widget(index)
        if hasattr(widget, "shown"):
            widget.shown()

    def closeEvent(self, event: QCloseEvent) -> None:  # Qt's name
        # Nothing lost: the line stops and everything queued is judged and written before exit;
        # a training or measuring job still running ends with the app (it must not outlive it).
        self.session.close()
        self.live.controller.stop_and_wait()
        terminate_all()
        self.context.close()
        super().closeEvent(event)
