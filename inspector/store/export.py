"""CSV export of filtered results, streamed in pages so a year of results never sits in memory."""

from __future__ import annotations

import csv
import errno
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, Select, select

from inspector.store.schema import Result, Run
from models.files import atomic_write

PAGE = 5000
COLUMNS = (
    "id",
    "run_id",
    "lot",
    "frame_index",
    "captured_at",
    "verdict",
    "label",
    "confidence",
    "ood_score",
    "truth",
    "reviewed",
    "reviewed_label",
    "latency_total_ms",
    "image_ref",
)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutral(text: Any) -> Any:
    """``text`` with a leading ``'`` when a spreadsheet would run it as a formula; anything else as is.

    Lots, class names and review labels are typed by people: a lot named ``=HYPERLINK(...)`` opened
    in Excel or LibreOffice runs (CSV injection). The quote is OWASP's advice and what a spreadsheet
    shows as text. Only text is touched: a number such as an OOD score of -0.5 stays a number.
    """
    if isinstance(text, str) and text.startswith(FORMULA_START):
        return "'" + text
    return text


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return neutral(value)


def _classes(connection: Connection, where: Select) -> tuple[list[str], int | None]:
    """Pass 1: every class that has a probability, in order of first appearance, and the last id."""
    seen: dict[str, None] = {}
    last: int | None = None
    stmt = where.with_only_columns(Result.id, Result.probabilities).order_by(None)
    for row in connection.execution_options(yield_per=PAGE).execute(stmt):
        last = row.id if last is None else max(last, row.id)
        for name in row.probabilities or {}:
            seen.setdefault(name, None)
    return list(seen), last


def _rows(connection: Connection, where: Select, classes: list[str], last: int) -> Iterable[list[Any]]:
    lots = dict(connection.execute(select(Run.id, Run.lot)).all())
    stmt = where.where(Result.id <= last).order_by(Result.captured_at, Result.id)
    for row in connection.execution_options(yield_per=PAGE).execute(stmt):
        values = row._mapping
        probabilities = values["probabilities"] or {}
        cells = [values["id"], values["run_id"], lots.get(values["run_id"], "")]
        cells += [values[name] for name in COLUMNS[3:]]
        cells += [probabilities.get(name) for name in classes]
        yield [_cell(cell) for cell in cells]


def write_csv(connection: Connection, where: Select, target: Path | TextIO) -> int:
    """Write the results selected by ``where`` (a ``select(Result)`` with filters) oldest first.

    Both passes run in one read transaction, bounded by the last id seen in pass 1, so rows the
    line writes meanwhile cannot add rows or columns halfway. A file target appears atomically.
    """
    classes, last = _classes(connection, where)
    header = [*COLUMNS, *(f"prob_{name}" for name in classes)]
    if isinstance(target, (str, Path)):
        folder = Path(target).parent
        if not folder.is_dir():  # a mistyped folder is reported, never created
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(folder))
        count = 0

        def write(tmp: Path) -> None:
            nonlocal count
            with tmp.open("w", newline="", encoding="utf-8") as handle:
                count = _write(handle, header, connection, where, classes, last)

        atomic_write(target, write)  # fsynced; never replaces a folder, FIFO or device
        return count
    return _write(target, header, connection, where, classes, last)


def _write(
    handle: TextIO,
    header: list[str],
    connection: Connection,
    where: Select,
    classes: list[str],
    last: int | None,
) -> int:
    writer = csv.writer(handle)
    writer.writerow([neutral(name) for name in header])
    if last is None:
        return 0
    count = 0
    for cells in _rows(connection, where, classes, last):
        writer.writerow(cells)
        count += 1
    return count
