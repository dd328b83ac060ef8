"""QA-confirmed results as a station dataset (DESIGN §3, "Adapt"): the ledger feeds the fine-tune wizard.

Every reviewed result whose archived image still exists becomes one training image, labelled with
what QA decided (``reviewed_label``), not with what the model said. The output is both a
folder-per-class tree and a ``manifest.csv`` (``path,label,group,run,result_id``) that
``data.station.load_station`` reads; the manifest carries the true label, so a class name that is
not a safe folder name still round-trips.

The folder appears complete or not at all: everything is written into a hidden temporary folder
beside the target and renamed into place at the end.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2

from data.errors import DataError
from data.images import read_image
from inspector.errors import InspectorError
from inspector.store import Ledger, ResultFilter

PAGE = 1000
MIN_PER_CLASS = 5  # fewer than this and the station loader cannot give the class a test split
MIN_RUN_GROUPS = 5  # the loader's group-aware split needs at least this many groups (5 folds)
MANIFEST = "manifest.csv"
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def folder_name(label: str) -> str:
    """A label as a folder name that cannot escape the dataset or hide itself."""
    name = _UNSAFE.sub("_", label).strip(" .") or "_"
    return name


def _archived_file(archive_root: Path, image_ref: str | None) -> Path | None:
    """The archive file behind a ledger reference, or None if it is absent or points outside."""
    if not image_ref:
        return None
    root = archive_root.resolve()
    path = (root / image_ref).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def _reviewed_rows(ledger: Ledger, filt: ResultFilter) -> list[dict]:
    """Every reviewed result the filter selects, oldest first (de-duplicated: reviews may land meanwhile)."""
    filt = replace(filt, reviewed=True)
    rows: list[dict] = []
    seen: set[int] = set()
    offset = 0
    while True:
        page = ledger.query_results(filt, offset=offset, limit=PAGE, newest_first=False)
        for row in page:
            if row["id"] not in seen and row.get("reviewed_label"):
                seen.add(row["id"])
                rows.append(row)
        if len(page) < PAGE:
            return rows
        offset += PAGE


def _copy_png(source: Path, target: Path) -> None:
    if source.suffix.lower() == ".png":
        shutil.copyfile(source, target)
        return
    image = read_image(source)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(target), image):
        raise InspectorError(f"{target}: cannot write the image")


def export_station_dataset(
    ledger: Ledger,
    filt: ResultFilter,
    archive_root: Path,
    out_dir: Path,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, list[str]]:
    """Write the reviewed results selected by ``filt`` as a station dataset in ``out_dir``.

    Returns (images written, warnings). Results without an archived image are skipped with a
    warning. ``group`` is the run id, so parts from one run never straddle train and test; with
    fewer than five runs the loader's group split cannot work, so identical images are grouped
    instead (said in the warnings). Refuses an ``out_dir`` that exists and is not empty.
    ``progress(done, total)`` is called as images are copied.
    """
    out_dir = Path(out_dir)
    archive_root = Path(archive_root)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InspectorError(f"{out_dir}: already exists and is not an empty folder; choose a new one")
    rows = _reviewed_rows(ledger, filt)
    if not rows:
        raise InspectorError("no reviewed results match these filters: review some parts first")
    warnings: list[str] = []
    usable = [(row, _archived_file(archive_root, row.get("image_ref"))) for row in rows]
    missing = sum(1 for _, path in usable if path is None)
    usable = [(row, path) for row, path in usable if path is not None]
    if missing:
        warnings.append(f"{missing} reviewed result(s) skipped: image not archived or file missing")
    if not usable:
        raise InspectorError(f"none of the {len(rows)} reviewed results has an archived image to export")

    runs = {row["run_id"] for row, _ in usable}
    by_run = len(runs) >= MIN_RUN_GROUPS
    if not by_run:
        warnings.append(
            f"only {len(runs)} run(s) in the export: grouped by identical image rather than by run "
            f"(a group-aware split needs at least {MIN_RUN_GROUPS} runs)"
        )

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        manifest_rows = []
        for done, (row, source) in enumerate(usable, start=1):
            label = row["reviewed_label"]
            folder = tmp / folder_name(label)
            folder.mkdir(exist_ok=True)
            target = folder / f"{row['id']}.png"
            try:
                _copy_png(source, target)
            except (OSError, DataError) as exc:
                raise InspectorError(f"{source}: cannot copy into the dataset ({exc})") from exc
            if by_run:
                group = f"run-{row['run_id']}"
            else:
                group = hashlib.sha1(target.read_bytes()).hexdigest()[:16]
            manifest_rows.append([target.relative_to(tmp).as_posix(), label, group, row["run_id"], row["id"]])
            if progress is not None and (done % 50 == 0 or done == len(usable)):
                progress(done, len(usable))
        with (tmp / MANIFEST).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "label", "group", "run", "result_id"])
            writer.writerows(manifest_rows)
            handle.flush()
            os.fsync(handle.fileno())
        counts = Counter(row["reviewed_label"] for row, _ in usable)
        small = sorted(label for label, n in counts.items() if n < MIN_PER_CLASS)
        if small:
            listed = ", ".join(f"{label} ({counts[label]})" for label in small)
            warnings.append(f"classes with fewer than {MIN_PER_CLASS} images: {listed}")
        if len(counts) < 2:
            warnings.append(f"only one class ({next(iter(counts))}): a classifier needs at least two")
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above); a file appearing meanwhile makes this fail safely
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return len(usable), warnings
