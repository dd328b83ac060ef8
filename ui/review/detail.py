"""The selected part's detail on the Review screen: its facts, a shadow candidate's answer, the
class probabilities (with the keys that change the class) and the part's signed history.

A mixin of :class:`ui.review.view.ReviewView`: it only renders what the view has fetched, so the
view keeps the queries and the detail's loading.
"""

from __future__ import annotations

from PySide6.QtWidgets import QListWidgetItem

from ui.review.constants import MAX_CLASS_KEYS
from ui.review.table import local_time, percent
from ui.session import may
from ui.style import verdict_style


class ReviewDetail:
    """Rendering of the selected part; the widgets it fills are built in :mod:`ui.review.layout`."""

    def _show_facts(self, row: dict) -> None:
        self.detail_verdict.setText(row["verdict"])
        self.detail_verdict.setStyleSheet(verdict_style(row["verdict"]))
        latency = row.get("latency_total_ms")
        infer = row.get("latency_infer_ms")
        qa = "not reviewed"
        if row.get("reviewed"):
            qa = f"✓ {row.get('reviewed_label')}"
        values = {
            "Result": f"#{row['id']} · run {row['run_id']} · frame {row['frame_index']}",
            "Captured": local_time(row.get("captured_at")),
            "Class": f"{row.get('label') or '–'}  {percent(row.get('confidence'))}",
            "OOD score": "–" if row.get("ood_score") is None else f"{row['ood_score']:.2f}",
            "Truth": row.get("truth") or "unknown",
            "Latency": "–"
            if latency is None
            else f"{latency:.1f} ms" + (f" (model {infer:.1f})" if infer is not None else ""),
            "Lot": row.get("lot") or "–",
            "QA": qa,
        }
        for name, text in values.items():
            self.facts[name].setText(text)
        if row.get("error"):
            self.facts["Class"].setText(f"error: {row['error']}")
        self._show_shadow(row.get("shadow"))
        self._fill_probabilities(row)

    def _show_shadow(self, answer: dict | None) -> None:
        """Both answers of a part a shadow candidate disagreed on (hidden for every other part)."""
        for widget in (self.shadow_caption, self.shadow_answer):
            widget.setVisible(answer is not None)
        if answer is None:
            self.shadow_answer.setText("")
            return

        def said(prefix: str) -> str:
            verdict, label, confidence = (answer[prefix + key] for key in ("verdict", "label", "confidence"))
            return f"{verdict} · {label or '–'}" + ("" if confidence is None else f" {percent(confidence)}")

        name = answer.get("model_name") or f"model {answer.get('model_version_id')}"
        text = f"{name} said {said('')} — deployed said {said('deployed_')}"
        if answer.get("error"):
            text += f" ({answer['error']})"
        self.shadow_answer.setText(text)

    def classes_for(self, row: dict) -> list[str]:
        """The classes keys 1..K stand for: the row's own classes, else every class seen so far."""
        names = list(row.get("probabilities") or {}) or list(self.classes)
        return names[:MAX_CLASS_KEYS]

    def _fill_probabilities(self, row: dict | None) -> None:
        self.confirm_button.setEnabled(bool(row and row.get("label")) and may(self.context.actor, "review"))
        change = may(self.context.actor, "change_class")
        names = self.classes_for(row) if row is not None else []
        keys = f"press 1–{len(names)} to change the class" if len(names) > 1 else ""
        self.probabilities_title.setText("Class probabilities" + (f" · {keys}" if keys else ""))
        probabilities = (row or {}).get("probabilities") or {}
        predicted = (row or {}).get("label")
        reviewed = row.get("reviewed_label") if row and row.get("reviewed") else None
        for number, (key, caption, bar) in enumerate(self.class_rows):
            if number >= len(names):
                for widget in (key, caption, bar):
                    widget.hide()
                continue
            name = names[number]
            key.setToolTip(f"Change the class to {name} (key {number + 1})")
            key.setEnabled(change)
            marks = ("  ◀ model" if name == predicted else "") + ("  ✓ QA" if name == reviewed else "")
            caption.setText(f"{name}{marks}")
            caption.setStyleSheet("font-weight: 700;" if name == predicted else "")
            p = probabilities.get(name)
            bar.setValue(int(round((p or 0.0) * 1000)))
            bar.setFormat(percent(p))
            for widget in (key, caption, bar):
                widget.show()

    def _fill_history(self, history: list[dict], audit: list[dict]) -> None:
        """The part's audit rows, newest on top, each with its signer: who, signed or not, the
        signature's meaning and when. Reviews written before the audit trail existed (ledgers older
        than issue 27) have no row there: they follow, from the reviews table, marked as such."""
        self.history.clear()
        if not history and not audit:
            self.history.addItem("No reviews yet")
            return
        for row in audit:
            detail = row.get("detail") or {}
            old, new = detail.get("old_label"), detail.get("new_label")
            change = f"confirmed {new}" if old == new else f"{old or '–'} → {new}"
            signer = (
                f"✍ signed “{row['meaning']}”"
                if row.get("signed")
                else f"not signed ({row.get('meaning') or row['kind']})"
            )
            text = f"{local_time(row['at'])}  {row['actor']}: {change}  · {signer}"
            if row.get("reason"):
                text += f" — “{row['reason']}”"
            item = QListWidgetItem(text)
            item.setToolTip(f"audit row {row['id']} · sha256 {row['hash'][:16]}…")
            self.history.addItem(item)
        reviews_in_trail = sum(1 for row in audit if row.get("kind") == "review")
        for entry in reversed(history[: max(0, len(history) - reviews_in_trail)]):
            change = (
                f"confirmed {entry['new_label']}"
                if entry["old_label"] == entry["new_label"]
                else f"{entry['old_label'] or '–'} → {entry['new_label']}"
            )
            text = (
                f"{local_time(entry['reviewed_at'])}  {entry['reviewer']}: {change}  · before the audit trail"
            )
            if entry.get("reason"):
                text += f" — “{entry['reason']}”"
            self.history.addItem(text)
