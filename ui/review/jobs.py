"""Review's worker side: plain functions run off the UI thread, no widgets.

Every answer comes back as a :class:`Reply` tagged with the request's number, failures included,
so that the view can drop an answer a newer request has replaced (a stale failure must not disturb
a newer query either). Queries are paged and counted by the database: nothing here loads the
whole ledger.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtGui import QImage

from data.images import fit_within, read_image
from inspector.access import SIGNED_ACTIONS, Actor, authorise
from inspector.line.overlay import overlay_importance
from inspector.store import ResultFilter
from ui.context import AppContext
from ui.qt_images import to_qimage
from ui.review.constants import IMAGE_SIDE, PAGE
from ui.workers import JOB_ERRORS, Latest

AUDIT_ROWS = 50  # a part's audit rows shown at most (a part is reviewed a handful of times)


@dataclass
class Reply:
    """A worker's answer, tagged so the UI can drop it when a newer request has replaced it."""

    key: int
    value: Any = None
    error: str | None = None


def tagged(key: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Reply:
    """User-facing failures come back tagged too (a stale failure must not disturb a newer query)."""
    try:
        return Reply(key, fn(*args, **kwargs))
    except JOB_ERRORS as exc:
        text = str(exc).strip()
        return Reply(key, error=text.splitlines()[0] if text else type(exc).__name__)


def if_current(latest: Latest, key: int, fn: Callable[..., Any], *args: Any) -> Reply:
    """Run ``fn`` unless a newer query replaced this one while it waited in the pool's queue."""
    if not latest.is_current(key):
        return Reply(key, error="superseded")
    return tagged(key, fn, *args)


def count_results(context: AppContext, filt: ResultFilter) -> int:
    return context.ledger().count_results(filt)


def fetch_page(
    context: AppContext, filt: ResultFilter, offset: int, newest_first: bool
) -> tuple[int, list[dict]]:
    return offset, context.ledger().query_results(filt, offset=offset, limit=PAGE, newest_first=newest_first)


def filter_options(context: AppContext) -> tuple[list[dict], list[str]]:
    ledger = context.ledger()
    return ledger.runs(limit=500), ledger.classes()


def archive_path(home: Path, image_ref: str | None) -> tuple[Path | None, str]:
    """The archived file for a ledger reference, or None with the reason QA should read."""
    if not image_ref:
        return None, "No image archived for this part (the archive keeps NG/UNSURE and a sample of OK)"
    root = (home / "archive").resolve()
    path = (root / image_ref).resolve()
    if not path.is_relative_to(root):
        return None, f"Image reference points outside the archive: {image_ref}"
    if not path.is_file():
        return None, f"Archived image is missing:\n{path}"
    return path, ""


def trail(context: AppContext, result_id: int) -> tuple[list, list]:
    """The part's reviews (oldest first) and its audit rows with their signers (newest first)."""
    ledger = context.ledger()
    return ledger.history(result_id), ledger.audit_rows(limit=AUDIT_ROWS, subject=f"result {result_id}")


def load_detail(
    context: AppContext, result_id: int, image_ref: str | None
) -> tuple[QImage | None, str, list, list]:
    path, note = archive_path(context.home, image_ref)
    image = None
    if path is not None:
        image = to_qimage(fit_within(read_image(path), IMAGE_SIDE))  # QImage is fine off the UI thread
    return image, note, *trail(context, result_id)


def review_action(result: dict, label: str) -> str:
    """A label other than the model's is a class change (a reason, and a signature once accounts
    exist); the model's own label is a plain review."""
    return "review" if label == result.get("label") else "change_class"


def write_review(
    context: AppContext, result_id: int, label: str, actor: Actor, reason: str
) -> tuple[dict, list, list]:
    """Write one review as ``actor``, allowed by :func:`inspector.access.authorise` (the refusal,
    if any, is the backend's one line), signed with its meaning when ``actor`` signed it."""
    ledger = context.ledger()
    action = review_action(ledger.get_result(result_id), label)
    authorise(ledger, actor, action)
    meaning = SIGNED_ACTIONS.get(action) if actor.signed else None
    ledger.review(result_id, label, actor.name, reason, signed=actor.signed, meaning=meaning)
    return ledger.get_result(result_id), *trail(context, result_id)


def export_csv(context: AppContext, filt: ResultFilter, path: Path) -> int:
    from models.files import atomic_write

    ledger = context.ledger()
    authorise(ledger, context.actor, "export")
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            count = ledger.export_csv(handle, filt)

    atomic_write(path, write)
    return count


def export_station(
    context: AppContext, filt: ResultFilter, out_dir: Path, task: Any = None
) -> tuple[int, list[str], Path]:
    from inspector.store.station_export import export_station_dataset

    progress = (lambda done, total: task.report((done, total))) if task is not None else None
    ledger = context.ledger()
    authorise(ledger, context.actor, "export")
    count, warnings = export_station_dataset(
        ledger, filt, context.home / "archive", out_dir, progress=progress
    )
    return count, warnings, out_dir


class MergeMapper:
    """The deployed model, loaded once (in a worker) to recompute merge maps for archived images.

    The ledger does not keep merge maps, and loading the exact model version that judged a part
    is not always possible (it may be gone from the registry), so the map is recomputed with the
    deployed model, and QA is told when that is not the model that judged the part.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._engine: Any = None

    def overlay(self, image_ref: str | None, judged_by: str | None) -> tuple[QImage | None, str]:
        path, note = archive_path(self.home, image_ref)
        if path is None:
            return None, note
        image = fit_within(read_image(path), IMAGE_SIDE)
        with self._lock:  # one model load, one inference at a time
            if self._engine is None:
                from inspector.line.inference import InferenceEngine
                from inspector.line.resolve import resolve_model

                self._engine = InferenceEngine.load(resolve_model(None, self.home))
            engine = self._engine
            out = engine.infer([image], track_maps=True)
        if not out.maps:
            return None, "The deployed model merges no tokens: it has no merge map to show"
        name = engine.bundle.path.name if engine.bundle.path else "the deployed model"
        note = f"Merge map from {name} (warm: detail kept, cool: merged)"
        if judged_by and judged_by != engine.sha256:
            note += " — not the model version that judged this part"
        return to_qimage(overlay_importance(image, out.maps[0])), note
