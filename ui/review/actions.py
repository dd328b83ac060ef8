"""What QA does on the Review screen: review keys, confirm or change a class, export.

A mixin of :class:`ui.review.view.ReviewView`. Every write runs in a worker and the selection
moves on at once, so QA never waits for the database.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFileDialog

from inspector.access import Actor, local_actor
from inspector.errors import InspectorError
from inspector.jobs import report as jobs_report
from inspector.reports.window import ReportWindow
from inspector.reports.window import resolve as resolve_window
from inspector.store import ResultFilter
from ui.review import jobs
from ui.review.jobs import Reply
from ui.review.widgets import ReasonDialog, restyle
from ui.session import may
from ui.signature_dialog import with_signature
from ui.workers import run_job, run_task


class ReviewActions:
    """Reviewing and exporting; the state it reads (table, model, snapshot) is the view's."""

    # -- reviewing ---------------------------------------------------------------------------

    def handle_key(self, event: QKeyEvent) -> bool:
        """The review keys; True when the key was one of them."""
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if modifiers not in (Qt.KeyboardModifier.NoModifier,):
            return False
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space, Qt.Key.Key_C):
            self.confirm()
        elif Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            self.override(key - Qt.Key.Key_1)
        elif key in (Qt.Key.Key_N, Qt.Key.Key_Down):
            self.move(1)
        elif key in (Qt.Key.Key_P, Qt.Key.Key_Up):
            self.move(-1)
        else:
            return False
        return True

    def _reviewer(self) -> str | None:
        name = self.reviewer.text().strip()
        if not name:
            restyle(self.reviewer, "missing")
            self.reviewer.setFocus()
            self.say("Enter your name as reviewer first: every review is signed.", error=True)
            return None
        return name

    def _acting(self) -> Actor | None:
        """Who reviews: the signed-in person once accounts exist, else the local user named in the
        Reviewer field (as before accounts); None, with the field marked, when it is empty."""
        if self.context.actor.role is not None:
            return self.context.actor
        name = self._reviewer()
        return None if name is None else local_actor(name)

    def confirm(self) -> bool:
        """Confirm the model's class for the selected part."""
        row = self.selected_row()
        if row is None:
            return False
        if not row.get("label"):
            self.say("This part has no predicted class to confirm: choose one with 1..K.", error=True)
            return False
        return self._submit(row, row["label"], "")

    def override(self, number: int, reason: str | None = None) -> bool:
        """Change the selected part to class ``number`` (0-based). Without a reason, ask for one."""
        row = self.selected_row()
        if row is None:
            return False
        classes = self.classes_for(row)
        if not 0 <= number < len(classes):
            self.say(f"There is no class {number + 1} for this part (1..{len(classes)}).", error=True)
            return False
        label = classes[number]
        if label == row.get("label"):
            return self._submit(row, label, reason or "")
        if reason is None:
            if self._acting() is None:
                return False
            self.reason_dialog = ReasonDialog(row, label, self.recent_reasons, self)
            self.reason_dialog.accepted.connect(self._reason_given)
            self.reason_dialog.open()
            return False
        if not reason.strip():
            self.say(
                f"Changing {row.get('label') or 'no class'} to {label} needs a reason: not saved.", error=True
            )
            return False
        return self._change(row, label, reason.strip())

    def _reason_given(self) -> None:
        dialog = self.reason_dialog
        if dialog is None:
            return
        reason = dialog.reason.text().strip()
        if reason and reason not in self.recent_reasons:
            self.recent_reasons.insert(0, reason)
            del self.recent_reasons[20:]
        self._change(dialog.row, dialog.label, reason)
        self.table.setFocus()

    def _change(self, row: dict, label: str, reason: str) -> bool:
        """A class change is signed once accounts exist: the password is asked with the meaning
        shown, then the signed actor writes it (without accounts it is written at once, as before).
        The selection moves on only if QA is still on the part that was changed."""
        actor = self._acting()
        if actor is None:
            return False
        was = (row.get("reviewed_label") if row.get("reviewed") else row.get("label")) or "no class"

        def signed(by: Actor) -> None:
            current = self.selected_row()
            moved_on = current is None or current["id"] != row["id"]
            self._submit(row, label, reason, advance=not moved_on, actor=by)
            self.table.setFocus()

        self.signature_dialog = with_signature(
            self,
            self.context.db_url,
            actor,
            "change_class",
            f"Result #{row['id']}: {was} → {label}. Reason: “{reason}”",
            signed,
        )
        return self.signature_dialog is None

    def _submit(
        self, row: dict, label: str, reason: str, advance: bool = True, actor: Actor | None = None
    ) -> bool:
        actor = actor or self._acting()
        if actor is None:
            return False
        self.model.pending.add(row["id"])
        self.model.changed(row["id"])
        run_task(
            jobs.tagged,
            row["id"],
            jobs.write_review,
            self.context,
            row["id"],
            label,
            actor,
            reason,
            on_done=self._on_reviewed,
        )
        if advance:
            self.move(1)
        return True

    def _on_reviewed(self, reply: Reply) -> None:
        self.model.pending.discard(reply.key)
        self.model.changed(reply.key)
        if reply.error:
            self.say(f"Review of #{reply.key} not saved: {reply.error}", error=True)
            return
        result, history, audit = reply.value
        self.model.update_row(result)
        last = history[-1] if history else {}
        signed = " (signed)" if audit and audit[0].get("signed") else ""
        if last.get("old_label") == last.get("new_label"):
            self.say(f"#{reply.key}: {last.get('new_label')} confirmed by {last.get('reviewer')}{signed}.")
        else:
            old, new = last.get("old_label") or "–", last.get("new_label")
            self.say(f"#{reply.key}: {old} → {new} ({last.get('reason')}){signed}.")
        current = self.selected_row()
        if current is not None and current["id"] == reply.key:
            self._show_facts(self.model.row_at(self.model.index_of[reply.key]) or current)
            self._fill_history(history, audit)

    # -- export ------------------------------------------------------------------------------

    def _export_filter(self) -> ResultFilter:
        if self.snapshot is not None:
            return self.snapshot
        filt = self.current_filter()
        return replace(filt, until=filt.until or datetime.now(timezone.utc))

    def _exporting(self, busy: bool) -> None:
        self._busy_exports += 1 if busy else -1
        for button in (self.csv_button, self.station_button):
            button.setEnabled(self._busy_exports == 0 and may(self.context.actor, "export"))

    def export_csv(self, path: Path | None = None) -> None:
        """The results matching the filters (as shown) to a CSV file, written atomically by a worker."""
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(
                self, "Export results as CSV", str(Path.home() / "results.csv"), "CSV files (*.csv)"
            )
            if not chosen:
                return
            path = Path(chosen)
        self._exporting(True)
        self.say(f"Exporting to {path} …")
        run_task(
            jobs.tagged,
            0,
            jobs.export_csv,
            self.context,
            self._export_filter(),
            Path(path),
            on_done=self._on_csv,
        )

    def _on_csv(self, reply: Reply) -> None:
        self._exporting(False)
        if reply.error:
            self.say(f"CSV export failed: {reply.error}", error=True)
        else:
            self.say(f"Exported {reply.value:,} results as CSV.")

    def export_station(self, out_dir: Path | None = None) -> None:
        """Reviewed results with their images as a station dataset for fine-tuning."""
        if out_dir is None:
            chosen = QFileDialog.getExistingDirectory(
                self, "Choose or create an empty folder for the station dataset", str(Path.home())
            )
            if not chosen:
                return
            out_dir = Path(chosen)
        self._exporting(True)
        self.say(f"Exporting reviewed results to {out_dir} …")
        run_task(
            jobs.tagged,
            0,
            jobs.export_station,
            self.context,
            self._export_filter(),
            Path(out_dir),
            on_done=self._on_station,
            on_progress=self._on_station_progress,
            wants_task=True,
        )

    def report_window(self, kind: str) -> ReportWindow:
        """What the report covers: a shift by the settings' shift times, or the filters' range/lot."""
        if kind in ("current", "last"):
            return resolve_window(
                shift=kind,
                lot=None,
                since=None,
                until=None,
                station=None,
                shift_starts=self.context.settings.shift_starts,
            )
        filt = self._export_filter()
        if filt.lot:
            return resolve_window(
                shift=None, lot=filt.lot, since=None, until=None, station=None, shift_starts=[]
            )
        since = filt.since or datetime(1970, 1, 1, tzinfo=timezone.utc)
        return resolve_window(
            shift=None, lot=None, since=since, until=filt.until, station=None, shift_starts=[]
        )

    def make_report(self, kind: str, path: Path | None = None) -> None:
        """Write the shift / lot report as PDF in a background process (it times the model)."""
        try:
            window = self.report_window(kind)
        except InspectorError as exc:
            self.say(f"No report: {exc}", error=True)
            return
        if path is None:
            name = "report-" + "".join(ch if ch.isalnum() else "-" for ch in window.title).strip("-") + ".pdf"
            chosen, _ = QFileDialog.getSaveFileName(
                self, "Save the report as PDF", str(Path.home() / name), "PDF files (*.pdf)"
            )
            if not chosen:
                return
            path = Path(chosen)
        self.report_button.setEnabled(False)
        self.say(f"Writing the report for {window.title} …")
        run_job(
            jobs_report.report_job,
            self.context.db_url,
            window,
            Path(path),
            self.context.home,
            line=self.context.line_overruns,
            owner=self,
            on_done=self._on_report,
            on_failed=self._on_report_failed,
            on_progress=lambda text: self.say(f"Report: {text}"),
        )

    def _on_report(self, message: str) -> None:
        self.report_button.setEnabled(may(self.context.actor, "report"))
        self.say(message)

    def _on_report_failed(self, message: str) -> None:
        self.report_button.setEnabled(may(self.context.actor, "report"))
        self.say(f"Report failed: {message}", error=True)

    def _on_station_progress(self, value: tuple[int, int]) -> None:
        done, total = value
        self.say(f"Copying images into the dataset: {done:,} / {total:,} …")

    def _on_station(self, reply: Reply) -> None:
        self._exporting(False)
        if reply.error:
            self.say(f"Dataset export failed: {reply.error}", error=True)
            return
        count, warnings, out_dir = reply.value
        text = f"Station dataset written: {count:,} images in {out_dir} (open it in the Fine-tune wizard)."
        if warnings:
            text += "  Note: " + "; ".join(warnings)
        self.say(text)
