"""Review: QA walks the ledger's NG and UNSURE parts, confirms or corrects them, and exports.

The ledger may hold millions of results, so nothing here ever loads or sorts them all: the table
is a paged, lazy model whose pages (200 rows) and total count are fetched by worker threads; a
request counter (:class:`ui.workers.Latest`) drops the answers of queries that a newer filter has
replaced, and every query is pinned to the moment it started (``until`` = now) so that a line
writing meanwhile cannot shift the pages under the reader. Sorting is by capture time, done by
the database.

A review is one key press (Enter/Space/C confirms, 1..K changes the class, a reason being
required for a change), written by a worker; the selection moves on at once so QA never waits.
The selected part shows its archived image (optionally with a merge map recomputed by the
deployed model), class probabilities, facts and audit history.

This module holds the screen's state, its queries and the loading of the selected part's detail;
the widgets are built in :mod:`ui.review.layout`, the detail is rendered by :mod:`ui.review.detail`,
reviewing and exporting live in :mod:`ui.review.actions`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from PySide6.QtCore import QEvent, QItemSelectionModel, QModelIndex, QObject, Qt, QTimer
from PySide6.QtGui import QKeyEvent, QShowEvent
from PySide6.QtWidgets import QApplication, QDateTimeEdit, QLineEdit, QWidget

from inspector.access import Actor
from inspector.store import ResultFilter
from ui.context import AppContext
from ui.review import jobs
from ui.review.actions import ReviewActions
from ui.review.constants import (
    CAPTURED,
    COLUMN_WIDTHS,
    DETAIL_DELAY_MS,
    PAGE,
    REVIEW_STYLE,
    STALE_S,
)
from ui.review.detail import ReviewDetail
from ui.review.jobs import MergeMapper, Reply
from ui.review.layout import ReviewLayout
from ui.review.table import ResultsModel
from ui.review.widgets import ReasonDialog, restyle
from ui.session import may
from ui.signature_dialog import SignatureDialog
from ui.style import verdict_style
from ui.workers import Latest, run_task


class ReviewView(ReviewLayout, ReviewActions, ReviewDetail, QWidget):
    """The QA screen; ``shown()`` (called by the main window) loads or refreshes it lazily."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setStyleSheet(REVIEW_STYLE)
        self.model = ResultsModel(self)
        self.model.fetch_requested.connect(self._fetch_page)
        self.mapper = MergeMapper(context.home)
        self.latest = Latest()  # the newest table query (count and pages)
        self.details = Latest()  # the newest detail request (image, history, merge map)
        self.snapshot: ResultFilter | None = None  # the filter of the shown query, ``until`` pinned
        self.newest_first = True
        self.loaded_at: float | None = None
        self.classes: dict[str, None] = {}  # every class seen, in class order
        self.models: dict[int, dict] = {}  # model_version_id -> a run row naming it
        self.options_loaded = False
        self.recent_reasons: list[str] = []
        self.reason_dialog: ReasonDialog | None = None
        self.signature_dialog: SignatureDialog | None = None  # open while a class change is signed
        self.last_message = ""
        self._reselect: int | None = None
        self._advance_to: int | None = None
        self._busy_exports = 0
        self._sized = False
        self._build()
        self._filter_timer = QTimer(self, singleShot=True, interval=350)
        self._filter_timer.timeout.connect(self.refresh)
        self._detail_timer = QTimer(self, singleShot=True, interval=DETAIL_DELAY_MS)
        self._detail_timer.timeout.connect(self._load_detail)

    @property
    def generation(self) -> int:
        return self.latest.value

    # -- querying ----------------------------------------------------------------------------

    def shown(self) -> None:
        """Called when the tab becomes visible: load on first sight, refresh a stale table."""
        if not self.options_loaded:
            self.options_loaded = True
            run_task(jobs.tagged, 0, jobs.filter_options, self.context, on_done=self._on_options)
        if self.loaded_at is None or time.monotonic() - self.loaded_at > STALE_S:
            self.refresh()

    def showEvent(self, event: QShowEvent) -> None:  # Qt's name
        super().showEvent(event)
        if not self._sized:
            self._sized = True
            # The table gets what its columns need, within 45-50 % of the width; the part gets the rest.
            width = self.splitter.width()
            table = min(max(sum(COLUMN_WIDTHS) + 24, int(width * 0.45)), int(width * 0.5))
            self.splitter.setSizes([table, width - table])
        self.shown()

    def current_filter(self) -> ResultFilter:
        """The filter the widgets describe; relative time ranges are taken from now."""
        now = datetime.now(timezone.utc)
        span = self.time_range.currentData()
        since = until = None
        if span == "custom":
            since = self.date_from.dateTime().toPython().astimezone(timezone.utc)
            until = self.date_to.dateTime().toPython().astimezone(timezone.utc)
        elif span is not None:
            since = now - span
        label = self.class_filter.currentData()
        lot = self.lot.currentText().strip()
        return ResultFilter(
            since=since,
            until=until,
            verdicts=tuple(self.verdict.currentData()),
            labels=(label,) if label else (),
            reviewed=self.review_state.currentData(),
            lot=None if not lot or lot == self.lot.itemText(0) else lot,
            model_version_id=self.model_filter.currentData(),
            shadow_disagreements=bool(self.shadow_filter.currentData()),
        )

    def refresh(self) -> None:
        """Start a new query (new generation): count and first page, both in workers."""
        self._filter_timer.stop()
        try:
            filt = self.current_filter()
        except ValueError as exc:
            self.say(str(exc), error=True)
            return
        now = datetime.now(timezone.utc)
        # Pin the end so a running line cannot shift the pages while QA scrolls.
        self.snapshot = replace(filt, until=min(filt.until, now) if filt.until else now)
        self.latest.next()
        self.loaded_at = time.monotonic()
        selected = self.selected_row()
        self._reselect = selected["id"] if selected else None
        self._advance_to = None
        self.model.reset()
        self._clear_detail()
        self.count_label.setText("Counting…")
        self.loaded_label.setText("")
        run_task(
            jobs.if_current,
            self.latest,
            self.generation,
            jobs.count_results,
            self.context,
            self.snapshot,
            on_done=self._on_count,
        )
        self.model.loading = True
        self._fetch_page(0)

    def _fetch_page(self, offset: int) -> None:
        if self.snapshot is None:
            return
        self.loaded_label.setText("loading…")
        run_task(
            jobs.if_current,
            self.latest,
            self.generation,
            jobs.fetch_page,
            self.context,
            self.snapshot,
            offset,
            self.newest_first,
            on_done=self._on_page,
        )

    def _on_count(self, reply: Reply) -> None:
        if not self.latest.is_current(reply.key):
            return
        if reply.error:
            self.count_label.setText("? results")
            self.say(reply.error, error=True)
            return
        self.model.total = reply.value
        self.count_label.setText(f"{reply.value:,} result{'s' if reply.value != 1 else ''}")
        self._show_loaded()

    def _on_page(self, reply: Reply) -> None:
        if not self.latest.is_current(reply.key):
            return  # a newer filter replaced this query
        if reply.error:
            self.model.loading = False
            self.model.exhausted = True
            self.loaded_label.setText("")
            self.say(reply.error, error=True)
            return
        offset, rows = reply.value
        for row in rows:
            for name in row.get("probabilities") or {}:
                if name not in self.classes:
                    self.classes[name] = None
                    self.class_filter.addItem(name, name)
        self.model.append(rows, last_page=len(rows) < PAGE)
        self._show_loaded()
        if offset == 0 and self.model.rows:
            wanted = self.model.index_of.get(self._reselect, 0) if self._reselect is not None else 0
            self.select(wanted)
            self._focus_table()
        elif self._advance_to is not None and self._advance_to < self.model.rowCount():
            self.select(self._advance_to)
        self._advance_to = None

    def _focus_table(self) -> None:
        """Review keys go to the table: after a filter was picked, ↓ must move the selection, not
        change the filter. Someone typing (a lot, their name, a date) keeps their focus."""
        focus = QApplication.focusWidget()
        if not self.isVisible() or isinstance(focus, (QLineEdit, QDateTimeEdit)):
            return
        if focus is None or self.isAncestorOf(focus):
            self.table.setFocus()

    def _show_loaded(self) -> None:
        shown = self.model.rowCount()
        total = self.model.total
        if total is not None and shown < total:
            self.loaded_label.setText(f"{shown:,} loaded · scroll for more")
        elif total is not None and total == 0:
            self.loaded_label.setText("nothing matches these filters")
        else:
            self.loaded_label.setText("")

    def _on_options(self, reply: Reply) -> None:
        if reply.error:
            self.say(reply.error, error=True)
            return
        runs, classes = reply.value
        self.class_filter.blockSignals(True)
        for name in classes:
            if name not in self.classes:
                self.classes[name] = None
                self.class_filter.addItem(name, name)
        self.class_filter.blockSignals(False)
        lots = sorted({run["lot"] for run in runs if run.get("lot")})
        self.lot.blockSignals(True)
        for lot in lots:
            if self.lot.findText(lot) < 0:
                self.lot.addItem(lot, lot)
        self.lot.blockSignals(False)
        self.model_filter.blockSignals(True)
        for run in runs:
            version = run["model_version_id"]
            if version not in self.models:
                self.models[version] = run
                self.model_filter.addItem(f"v{version} · {run.get('model_name') or '?'}", version)
        self.model_filter.blockSignals(False)

    def _filters_changed(self, *_: Any) -> None:
        if self.sender() is self.shadow_filter and self.shadow_filter.currentData():
            # A disagreement is as likely an OK the candidate calls NG: show every verdict.
            self.verdict.blockSignals(True)
            self.verdict.setCurrentIndex(0)
            self.verdict.blockSignals(False)
        custom = self.time_range.currentData() == "custom"
        for widget in (self.date_from, self.date_to, self.date_to_label):
            widget.setVisible(custom)
        self.newest_first = bool(self.order.currentData())
        self.table.horizontalHeader().setSortIndicator(
            CAPTURED, Qt.SortOrder.DescendingOrder if self.newest_first else Qt.SortOrder.AscendingOrder
        )
        self.refresh()

    def _typed(self, *_: Any) -> None:
        self._filter_timer.start()  # a lot or a date being typed: query once the typing pauses

    def _header_clicked(self, column: int) -> None:
        if column == CAPTURED:
            self.order.setCurrentIndex(1 if self.newest_first else 0)  # toggles, and re-queries
            return
        order = Qt.SortOrder.DescendingOrder if self.newest_first else Qt.SortOrder.AscendingOrder
        self.table.horizontalHeader().setSortIndicator(CAPTURED, order)
        self.say("The table sorts by capture time (the database does it); narrow with the filters above.")

    # -- selection and detail ----------------------------------------------------------------

    def selected_row(self) -> dict | None:
        index = self.table.currentIndex()
        return self.model.row_at(index.row()) if index.isValid() else None

    def select(self, number: int) -> None:
        index = self.model.index(number, CAPTURED)
        self.table.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.scrollTo(index)

    def move(self, step: int) -> None:
        """Next / previous part; past the last loaded row, fetch the next page and go on there."""
        current = self.table.currentIndex().row() if self.table.currentIndex().isValid() else -1
        target = current + step
        if target < 0:
            return
        if target >= self.model.rowCount():
            if self.model.canFetchMore():
                self._advance_to = target
                self.model.fetchMore()
            elif not self.model.loading:
                self.say("End of the list.")
            return
        self.select(target)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        row = self.model.row_at(current.row())
        if row is None:
            self._clear_detail()
            return
        self._show_facts(row)
        self.image.show_image(None, "Loading image…")
        self.image_note.setText("")
        self.history.clear()
        self._detail_timer.start()

    def _clear_detail(self) -> None:
        self.details.next()
        self.detail_verdict.setText("–")
        self.detail_verdict.setStyleSheet(verdict_style(""))
        for value in self.facts.values():
            value.setText("–")
        self._show_shadow(None)
        self.image.show_image(None, "Select a result")
        self.image_note.setText("")
        self.history.clear()
        self._fill_probabilities(None)

    def _class_key_clicked(self) -> None:
        sender = self.sender()
        for number, (key, _, _) in enumerate(self.class_rows):
            if key is sender:
                self.override(number)
                return

    def _load_detail(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        self.details.next()
        run_task(
            jobs.tagged,
            self.details.value,
            jobs.load_detail,
            self.context,
            row["id"],
            row.get("image_ref"),
            on_done=self._on_detail,
        )
        if self.overlay.isChecked():
            self._load_overlay(row)

    def _load_overlay(self, row: dict) -> None:
        judged_by = self.models.get(row.get("model_version_id") or -1, {}).get("model_sha256")
        self.image_note.setText("Computing the merge map…")
        run_task(
            jobs.tagged,
            self.details.value,
            self.mapper.overlay,
            row.get("image_ref"),
            judged_by,
            on_done=self._on_overlay,
        )

    def _on_detail(self, reply: Reply) -> None:
        if not self.details.is_current(reply.key):
            return
        if reply.error:
            self.image.show_image(None, reply.error)
            return
        image, note, history, audit = reply.value
        if not (self.overlay.isChecked() and self.image.image is not None):
            self.image.show_image(image, note)  # an overlay that arrived first stays
        self._fill_history(history, audit)

    def _on_overlay(self, reply: Reply) -> None:
        if not self.details.is_current(reply.key) or not self.overlay.isChecked():
            return
        if reply.error:
            self.image_note.setText(f"No merge map: {reply.error}")
            return
        image, note = reply.value
        if image is not None:
            self.image.show_image(image)
        self.image_note.setText(note)

    def _overlay_toggled(self, on: bool) -> None:
        row = self.selected_row()
        if row is None:
            return
        self.details.next()
        self.image_note.setText("")
        if on:
            self._load_overlay(row)
        else:
            run_task(
                jobs.tagged,
                self.details.value,
                jobs.load_detail,
                self.context,
                row["id"],
                row.get("image_ref"),
                on_done=self._on_detail,
            )

    def set_actor(self, actor: Actor) -> None:
        """Who reviews now: with accounts the signed-in person (the Reviewer field shows them and
        cannot be edited), else whoever types their name, as before. Keys and buttons the role
        may not use are disabled; the ledger-side check refuses them anyway."""
        if actor.role is not None:
            self.reviewer.setText(actor.name)
            self.reviewer.setToolTip(f"Reviews are signed in as {actor.name} ({actor.role})")
        self.reviewer.setReadOnly(actor.role is not None)
        for button, action in (
            (self.csv_button, "export"),
            (self.station_button, "export"),
            (self.report_button, "report"),
        ):
            button.setEnabled(may(actor, action) and (action == "report" or self._busy_exports == 0))
        self._fill_probabilities(self.selected_row())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt's name
        if watched is self.table and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            if self.handle_key(event):
                return True
        return super().eventFilter(watched, event)

    # -- messages ----------------------------------------------------------------------------

    def say(self, text: str, error: bool = False) -> None:
        self.last_message = text
        restyle(self.status, "statusError" if error else "hint")
        self.status.setText(text)
